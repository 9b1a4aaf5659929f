//! Calls to an API with the session's bearer token: a 401 answer triggers one refresh and one
//! retry, and the second answer is returned whatever it is.

use crate::error::Error;
use crate::session::Session;

/// Sends requests with a session's access token. Requests are built by a closure so that they
/// can be built again for the retry (a request body cannot always be replayed).
#[derive(Clone)]
pub struct AuthorizedHttp {
    session: Session,
    http: reqwest::Client,
}

impl AuthorizedHttp {
    pub(crate) fn new(session: Session) -> Self {
        let http = session.client().http().clone();
        Self { session, http }
    }

    /// Uses `http` for the API calls instead of the issuer's client.
    pub fn with_client(mut self, http: reqwest::Client) -> Self {
        self.http = http;
        self
    }

    /// Sends the request `build` makes, with the bearer token; on 401, refreshes once and sends
    /// it again.
    pub async fn send(
        &self,
        build: impl Fn(&reqwest::Client) -> reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, Error> {
        let token = self.session.access_token().await?;
        let response = self.attempt(&build, &token).await?;
        if response.status() != reqwest::StatusCode::UNAUTHORIZED {
            return Ok(response);
        }
        tracing::debug!("the API refused the access token; refreshing once");
        let fresh = self.session.refresh_rejected(&token).await?;
        self.attempt(&build, &fresh).await
    }

    /// `GET url` with the bearer token.
    pub async fn get(&self, url: &str) -> Result<reqwest::Response, Error> {
        self.send(|http| http.get(url)).await
    }

    async fn attempt(
        &self,
        build: &impl Fn(&reqwest::Client) -> reqwest::RequestBuilder,
        token: &str,
    ) -> Result<reqwest::Response, Error> {
        let request = build(&self.http)
            .bearer_auth(token)
            .build()
            .map_err(|e| Error::Unsupported(format!("cannot build the request: {e}")))?;
        let url = request.url().as_str().split('?').next().unwrap_or_default().to_owned();
        self.http.execute(request).await.map_err(|e| Error::network(&url, &e))
    }
}
