//! The authorization endpoint's pages: `/oauth/authorize` (GET and POST), the resumption after
//! sign-in and the consent form. Each reads the request and the session, asks
//! `crate::authorization` for the [`Outcome`], and renders it: our error page, a redirect back
//! to the client, the sign-in page, the consent page, the verified-email gate, or "try again".

use crate::authorization::{self, ConsentNeeded, Halt, Outcome, Pending, UNCHECKED, Untrusted};
use crate::error::PageError;
use crate::routes::ClientMeta;
use crate::routes::oauth::oauth_form::OAuthForm;
use crate::routes::pages::{FormTarget, Policy, checked_form, message, page_with};
use crate::session;
use crate::state::AppState;
use axum::Form;
use axum::extract::rejection::FormRejection;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use postern_pages::{ConsentPage, render};
use postern_store::Session;
use serde::Deserialize;

const EXPIRED: &str =
    "This sign-in request has expired or was already completed. Return to the application and start again.";

/// An error shown on our own page (the client or redirect URI could not be trusted).
fn error_page(text: &str) -> Response {
    message(StatusCode::BAD_REQUEST, "This sign-in request cannot be completed", text)
}

/// Sends the browser back to the client with these parameters, `state` and `iss`.
fn back_to_client(state: &AppState, pending: &Pending, params: &[(&str, &str)]) -> Response {
    let Ok(mut url) = url::Url::parse(&pending.redirect_uri) else {
        return error_page("The application's redirect address is not valid.");
    };
    {
        let mut q = url.query_pairs_mut();
        for (k, v) in params {
            q.append_pair(k, v);
        }
        if let Some(s) = &pending.state {
            q.append_pair("state", s);
        }
        q.append_pair("iss", &state.issuer);
    }
    let mut response = Redirect::to(url.as_str()).into_response();
    response.headers_mut().insert(header::CACHE_CONTROL, header::HeaderValue::from_static("no-store"));
    response
}

/// The page or redirect an outcome is.
async fn render_outcome(state: &AppState, headers: &HeaderMap, outcome: Outcome) -> Response {
    match outcome {
        Outcome::Untrusted(Untrusted::Invalid(text)) => error_page(&text),
        Outcome::Untrusted(Untrusted::Unavailable(e)) => PageError::failed(e, UNCHECKED).into_response(),
        Outcome::Untrusted(Untrusted::TooMany(wait)) => {
            let text = format!("Too many applications looked up from here. Try again in {wait} seconds.");
            PageError::too_many(wait, text).into_response()
        }
        Outcome::Expired => error_page(EXPIRED),
        Outcome::Error { pending, error, description } => {
            back_to_client(state, &pending, &[("error", &error), ("error_description", &description)])
        }
        Outcome::SignIn { token } => Redirect::to(&format!("/login?request={token}")).into_response(),
        Outcome::Consent(c) => consent_page(state, headers, &c).await,
        Outcome::Code { pending, code } => back_to_client(state, &pending, &[("code", &code)]),
        Outcome::SecondStep { token } => crate::routes::pages::second_step::to_second_step(state, &token),
        Outcome::NoSecondFactor { client_name } => {
            let text = format!(
                "{client_name} needs two-step verification, and your account has none yet. Set up an \
                 authenticator app or a passkey on your account page (/account), then go back to {client_name}."
            );
            PageError::refused(StatusCode::FORBIDDEN, "Two-step verification needed", text).into_response()
        }
        Outcome::Unverified { client_name, email } => {
            crate::routes::pages::registration::unverified_page(state, headers, &client_name, &email)
        }
        Outcome::Halted { cause: Halt::TooMany(wait) } => {
            let text = format!("Too many sign-in requests from here. Try again in {wait} seconds.");
            PageError::too_many(wait, text).into_response()
        }
        Outcome::Halted { cause: Halt::Failed { cause, text } } => PageError::from_cause(cause, text).into_response(),
    }
}

/// "Allow" and "Deny" end at the client, through a redirect the page's policy must allow.
async fn consent_page(state: &AppState, headers: &HeaderMap, c: &ConsentNeeded) -> Response {
    let (csrf, cookie) = session::csrf_token(state, headers);
    let scopes = crate::apikeys::describe_scopes(&state.store, &c.pending.scope).await;
    let resources = crate::resources::describe(&state.store, &c.pending.resources.join(" ")).await;
    let document_host = (c.client.registered_by == postern_store::RegisteredBy::Document)
        .then(|| url::Url::parse(c.client.client_id.as_str()).ok().and_then(|u| u.host_str().map(str::to_owned)))
        .flatten();
    let view = ConsentPage {
        csrf: &csrf,
        request: c.handle.as_str(),
        client_name: &c.client.name,
        email: &c.user.email,
        scopes: &scopes,
        resources: &resources,
        redirect: c.public.then_some(c.pending.redirect_uri.as_str()),
        self_registered: c.client.registered_by != postern_store::RegisteredBy::Admin,
        document_host: document_host.as_deref(),
        loopback_redirect: c.public
            && postern_core::client::RedirectUri::parse_native(&c.pending.redirect_uri).is_ok_and(|r| r.is_loopback()),
    };
    let target = FormTarget::of(&c.pending.redirect_uri);
    let policy = Policy { own_scripts: false, form_target: target.as_ref() };
    let mut response = page_with(StatusCode::OK, render(&view), &policy);
    if let Some(c) = cookie {
        response.headers_mut().append(header::SET_COOKIE, c);
    }
    response
}

/// The browser's session, or the "try again" page when it cannot be read.
async fn session_of(state: &AppState, headers: &HeaderMap) -> Result<Option<Session>, Response> {
    session::current(state, headers)
        .await
        .map(|s| s.map(|(_, session)| session))
        .map_err(|e| PageError::failed(e, UNCHECKED).into_response())
}

/// `GET /oauth/authorize`: the request in the query.
pub async fn authorize(
    State(state): State<AppState>,
    meta: ClientMeta,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    start(&state, &meta, &headers, &OAuthForm::parse(query.unwrap_or_default().as_bytes())).await
}

/// `POST /oauth/authorize`: the same request as a form body (OpenID Connect Core §3.1.2.1).
pub async fn authorize_posted(
    State(state): State<AppState>,
    meta: ClientMeta,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let form_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).and_then(|v| v.split(';').next());
    if !form_type.is_some_and(|t| t.trim().eq_ignore_ascii_case("application/x-www-form-urlencoded")) {
        return error_page("The request must be sent as a form (application/x-www-form-urlencoded).");
    }
    start(&state, &meta, &headers, &OAuthForm::parse(&body)).await
}

async fn start(state: &AppState, meta: &ClientMeta, headers: &HeaderMap, q: &OAuthForm) -> Response {
    let session = match session_of(state, headers).await {
        Ok(s) => s,
        Err(page) => return page,
    };
    render_outcome(state, headers, authorization::request(state, meta, session, q).await).await
}

/// The client origin that signing in for this waiting request may end at (see
/// [`Policy::form_target`]); `None` for anything that is not a live request handle.
pub async fn form_target(state: &AppState, handle: &authorization::RequestHandle) -> Option<FormTarget> {
    FormTarget::of(&authorization::waiting_redirect_uri(state, handle).await?)
}

/// Where a form continuing `continuation` may end: the waiting client's origin for an
/// authorization request (a sign-in may end there without another page), else nowhere else.
pub async fn continuation_target(state: &AppState, continuation: &crate::sign_in::Continuation) -> Option<FormTarget> {
    match continuation {
        crate::sign_in::Continuation::Authorize(handle) => form_target(state, handle).await,
        _ => None,
    }
}

#[derive(Deserialize)]
pub struct ContinueQuery {
    #[serde(default)]
    request: String,
}

/// `GET /oauth/authorize/continue`: where sign-in sends the browser back to.
pub async fn resume(
    State(state): State<AppState>,
    meta: ClientMeta,
    headers: HeaderMap,
    query: Result<axum::extract::Query<ContinueQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let handle = query.map(|q| q.0.request).unwrap_or_default();
    let session = match session_of(&state, &headers).await {
        Ok(s) => s,
        Err(page) => return page,
    };
    render_outcome(&state, &headers, authorization::resume(&state, &meta, session, &handle).await).await
}

#[derive(Deserialize)]
pub struct ConsentForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    request: String,
    #[serde(default)]
    decision: String,
}

/// `POST /oauth/authorize/consent`: the person's answer.
pub async fn consent(
    State(state): State<AppState>,
    meta: ClientMeta,
    headers: HeaderMap,
    form: Result<Form<ConsentForm>, FormRejection>,
) -> Response {
    let form = match checked_form(&state, &headers, form, |f: &ConsentForm| &f.csrf) {
        Ok(f) => f,
        Err(refused) => return refused.into_response(),
    };
    let session = match session_of(&state, &headers).await {
        Ok(s) => s,
        Err(page) => return page,
    };
    let allow = form.decision == "allow";
    render_outcome(&state, &headers, authorization::decide(&state, &meta, session, &form.request, allow).await).await
}
