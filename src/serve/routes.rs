//! The handlers. Every route but `/healthz`, `/metrics` and `/openapi.json` needs an `X-API-Key`;
//! a key reads only analyses whose apps are all in its scope.

use std::sync::Arc;

use std::collections::BTreeMap;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use utoipa::IntoResponses;
use utoipa::openapi::{Content, Ref, RefOr, ResponseBuilder, ResponsesBuilder};

use super::AppState;
use super::analyses::{Answer, RunEntry};
use super::api::{
    AnalysisListItem, AnalysisPage, AnalysisPending, AnalysisRequest, ErrorBody, PageQuery,
};
use super::keys::Caller;
use crate::recommend::Analysis;
use crate::sinks::output;
use crate::sinks::tables;

/// An error answer: status, JSON body, and `Retry-After` for 429.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    body: ErrorBody,
    retry_after_s: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, error: impl Into<String>) -> ApiError {
        ApiError {
            status,
            body: ErrorBody {
                error: error.into(),
                field: None,
            },
            retry_after_s: None,
        }
    }

    fn field(mut self, field: &str) -> ApiError {
        self.body.field = Some(field.to_string());
        self
    }
}

impl From<crate::Error> for ApiError {
    fn from(e: crate::Error) -> ApiError {
        tracing::error!(error = %e, "request failed");
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(self.body)).into_response();
        if let Some(s) = self.retry_after_s {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        response
    }
}

type ApiResult = std::result::Result<Response, ApiError>;

/// The longest analysis window accepted (ten years), before the lake's retention is checked.
const MAX_PERIOD_DAYS: u32 = 3650;

/// Documents JSON error answers by status.
fn error_responses(
    answers: &[(&str, &str)],
) -> BTreeMap<String, RefOr<utoipa::openapi::response::Response>> {
    let mut responses = ResponsesBuilder::new();
    for (status, description) in answers {
        responses = responses.response(
            *status,
            ResponseBuilder::new().description(*description).content(
                "application/json",
                Content::new(Some(Ref::from_schema_name("ErrorBody"))),
            ),
        );
    }
    responses.build().into()
}

/// The answers of every route that needs a key.
struct KeyErrors;

impl IntoResponses for KeyErrors {
    fn responses() -> BTreeMap<String, RefOr<utoipa::openapi::response::Response>> {
        error_responses(&[
            ("401", "No valid X-API-Key"),
            ("429", "Over the key's rate limit (see Retry-After)"),
            ("500", "Storage or internal failure"),
            (
                "503",
                "Timed out, or too many analyses running (see Retry-After)",
            ),
        ])
    }
}

/// The answers of every read of a committed analysis.
struct ReadErrors;

impl IntoResponses for ReadErrors {
    fn responses() -> BTreeMap<String, RefOr<utoipa::openapi::response::Response>> {
        let mut responses = KeyErrors::responses();
        responses.append(&mut error_responses(&[
            ("400", "A malformed id or file name"),
            ("403", "The analysis covers an app outside the key's scope"),
            ("404", "No such analysis or file"),
        ]));
        responses
    }
}

/// The caller of a protected route: a known key with requests left in its bucket.
fn caller(state: &AppState, headers: &HeaderMap) -> std::result::Result<Caller, ApiError> {
    let unauthorized = || ApiError::new(StatusCode::UNAUTHORIZED, "a valid X-API-Key is required");
    let presented = headers
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .ok_or_else(unauthorized)?;
    let caller = state.keys.verify(presented).ok_or_else(unauthorized)?;
    state.keys.admit(&caller).map_err(|wait_s| ApiError {
        retry_after_s: Some(wait_s),
        ..ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            format!(
                "key `{}` is over its {} requests per minute",
                caller.key.name, caller.key.requests_per_minute
            ),
        )
    })?;
    Ok(caller)
}

/// The analysis a route reads.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub struct AnalysisPath {
    /// The analysis id (a UUID).
    #[param(
        pattern = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
    )]
    analysis_id: String,
}

/// Ids, supply ids and file names as they may appear in a path: no separators, no dot-dot.
fn safe_segment(text: &str, field: &str) -> std::result::Result<(), ApiError> {
    let ok = !text.is_empty()
        && text.len() <= 128
        && !text.starts_with('.')
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
    if ok {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("`{field}` may hold only letters, digits, '-', '_' and '.' (not leading)"),
        )
        .field(field))
    }
}

/// The committed analysis `id`, if the caller may read it.
async fn readable(
    state: &AppState,
    caller: &Caller,
    id: &str,
) -> std::result::Result<RunEntry, ApiError> {
    if uuid::Uuid::parse_str(id).is_err() {
        return Err(
            ApiError::new(StatusCode::BAD_REQUEST, "analysis_id must be a UUID")
                .field("analysis_id"),
        );
    }
    let entry = state
        .analyses
        .find(id)
        .await?
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, format!("no analysis {id}")))?;
    match out_of_scope(caller, &entry.apps) {
        Some(app) => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            format!("key `{}` may not read app `{app}`", caller.key.name),
        )),
        None => Ok(entry),
    }
}

/// The first of `apps` the caller may not read; a run that names no app needs the all-apps scope.
fn out_of_scope<'a>(caller: &Caller, apps: &'a [String]) -> Option<&'a str> {
    if apps.is_empty() && !caller.key.may(super::keys::ALL_APPS) {
        return Some(super::keys::ALL_APPS);
    }
    apps.iter().map(String::as_str).find(|a| !caller.key.may(a))
}

/// A file of a committed run as a download.
async fn download(
    state: &AppState,
    entry: &RunEntry,
    table: Option<&str>,
    relative: &str,
    content_type: &'static str,
    filename: &str,
) -> ApiResult {
    let bytes = output::read_run_file(
        state.analyses.out(),
        &entry.run_id,
        entry.run_date(),
        table,
        relative,
    )
    .await?
    .ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no {filename} in this analysis"),
        )
    })?;
    attachment(bytes, content_type, filename)
}

fn attachment(
    bytes: impl Into<axum::body::Body>,
    content_type: &'static str,
    filename: &str,
) -> ApiResult {
    let disposition = if content_type.starts_with("text/html") {
        "inline"
    } else {
        "attachment"
    };
    Ok((
        [
            (header::CONTENT_TYPE, content_type.to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("{disposition}; filename=\"{filename}\""),
            ),
        ],
        bytes.into(),
    )
        .into_response())
}

/// Reads the body as an analysis request: 413 over the limit, then [`parse_analysis_request`].
fn parse_request(
    body: std::result::Result<Bytes, BytesRejection>,
) -> std::result::Result<AnalysisRequest, ApiError> {
    let body = body.map_err(|r| ApiError::new(r.status(), r.body_text()))?;
    parse_analysis_request(&body)
}

/// Parses and checks an analysis request body: 400 naming the malformed field, 422 for values out
/// of range. Public so that it can be fuzzed without a server.
pub fn parse_analysis_request(body: &[u8]) -> std::result::Result<AnalysisRequest, ApiError> {
    let de = &mut serde_json::Deserializer::from_slice(body);
    let request: AnalysisRequest = serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let message = e.inner().to_string();
        // A missing or unknown field is named in the message, not the path.
        let named = message.split('`').nth(1).map(str::to_string);
        let field = if path == "." || path == "?" {
            named.unwrap_or_else(|| "body".into())
        } else {
            path
        };
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("malformed body: {message}"),
        )
        .field(&field)
    })?;
    let unprocessable = |message: String, field: &str| {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, message).field(field)
    };
    if request.app_ids.is_empty() {
        return Err(unprocessable(
            "app_ids must name at least one app".into(),
            "app_ids",
        ));
    }
    if let Some(bad) = request
        .app_ids
        .iter()
        .find(|a| a.is_empty() || a.len() > 128 || a.chars().any(char::is_control))
    {
        return Err(unprocessable(
            format!("app id {bad:?} must be 1 to 128 printable characters"),
            "app_ids",
        ));
    }
    if !(1..=MAX_PERIOD_DAYS).contains(&request.analysis_period_days) {
        return Err(unprocessable(
            format!("analysis_period_days must be 1 to {MAX_PERIOD_DAYS}"),
            "analysis_period_days",
        ));
    }
    Ok(request)
}

fn pending(analysis_id: &str) -> Response {
    let location = format!("/v2/analysis/{analysis_id}");
    let mut response = (
        StatusCode::ACCEPTED,
        Json(AnalysisPending {
            analysis_id: analysis_id.to_string(),
            status: "running".into(),
            location: location.clone(),
        }),
    )
        .into_response();
    if let Ok(v) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, v);
    }
    response
}

async fn report_json(state: &AppState, entry: &RunEntry) -> ApiResult {
    let bytes = output::read_run_file(
        state.analyses.out(),
        &entry.run_id,
        entry.run_date(),
        None,
        "report.json",
    )
    .await?
    .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "the analysis has no report.json"))?;
    Ok(([(header::CONTENT_TYPE, "application/json")], bytes).into_response())
}

/// Run an analysis (seed 000): the pipeline for these apps over the last `analysis_period_days`.
///
/// Identical requests share one run; a committed one answers at once. With
/// `Prefer: respond-async` (or when the analysis outlasts the request timeout) the answer is 202
/// with a `Location` to poll.
#[utoipa::path(
    post,
    path = "/v2/analysis/system_recommendations",
    request_body = AnalysisRequest,
    params(("Prefer" = Option<String>, Header, description = "`respond-async` to get 202 at once")),
    responses(
        (status = 200, description = "The analysis", body = Analysis),
        (status = 202, description = "Running: poll the Location", body = AnalysisPending),
        (status = 400, description = "Malformed body", body = ErrorBody),
        (status = 403, description = "An app outside the key's scope", body = ErrorBody),
        (status = 413, description = "Body over the limit", body = ErrorBody),
        (status = 422, description = "A value out of range", body = ErrorBody),
        KeyErrors,
        (status = 500, description = "The analysis failed", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn create_analysis(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: std::result::Result<Bytes, BytesRejection>,
) -> ApiResult {
    let caller = caller(&state, &headers)?;
    let request = parse_request(body)?;
    let mut apps = request.app_ids;
    apps.sort();
    apps.dedup();
    if let Some(app) = apps.iter().find(|a| !caller.key.may(a)) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            format!("key `{}` may not analyse app `{app}`", caller.key.name),
        )
        .field("app_ids"));
    }
    let window = state
        .analyses
        .window(request.analysis_period_days)
        .await?
        .map_err(|why| {
            ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, why).field("analysis_period_days")
        })?;
    let asynchronous = headers
        .get_all("prefer")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| {
            v.split(',')
                .any(|p| p.trim().eq_ignore_ascii_case("respond-async"))
        });
    let wait = if asynchronous {
        std::time::Duration::ZERO
    } else {
        state.request_timeout
    };
    match state.analyses.analyse(apps, window, wait).await? {
        Answer::Done(entry) => report_json(&state, &entry).await,
        Answer::Running { analysis_id } => Ok(pending(&analysis_id)),
        Answer::Busy => Err(ApiError {
            retry_after_s: Some(60),
            ..ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "the server is running as many analyses as it may; retry later",
            )
        }),
    }
}

/// The analysis (`report.json`), or 202 while it runs.
#[utoipa::path(
    get,
    path = "/v2/analysis/{analysis_id}",
    params(AnalysisPath),
    responses(
        (status = 200, description = "The analysis", body = Analysis),
        (status = 202, description = "Still running", body = AnalysisPending),
        ReadErrors,
    ),
    security(("api_key" = []))
)]
pub async fn get_analysis(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(AnalysisPath { analysis_id }): Path<AnalysisPath>,
) -> ApiResult {
    let caller = caller(&state, &headers)?;
    if let Some(apps) = state.analyses.running_apps(&analysis_id) {
        return match out_of_scope(&caller, &apps) {
            Some(app) => Err(ApiError::new(
                StatusCode::FORBIDDEN,
                format!("key `{}` may not read app `{app}`", caller.key.name),
            )),
            None => Ok(pending(&analysis_id)),
        };
    }
    let entry = readable(&state, &caller, &analysis_id).await?;
    report_json(&state, &entry).await
}

/// The committed analyses the key may read, newest first.
#[utoipa::path(
    get,
    path = "/v2/analyses",
    params(PageQuery),
    responses(
        (status = 200, description = "One page", body = AnalysisPage),
        (status = 400, description = "Malformed query", body = ErrorBody),
        (status = 422, description = "Page or size out of range", body = ErrorBody),
        KeyErrors,
    ),
    security(("api_key" = []))
)]
pub async fn list_analyses(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    query: std::result::Result<Query<PageQuery>, QueryRejection>,
) -> ApiResult {
    let caller = caller(&state, &headers)?;
    let Query(query) = query.map_err(|r| ApiError::new(StatusCode::BAD_REQUEST, r.body_text()))?;
    let page = query.page.unwrap_or(1);
    let per_page = query.per_page.unwrap_or(20);
    if page == 0 || page > 1_000_000 {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "page must be 1 to 1000000",
        )
        .field("page"));
    }
    if !(1..=100).contains(&per_page) {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "per_page must be 1 to 100",
        )
        .field("per_page"));
    }
    state.analyses.refresh(false).await?;
    let mut entries: Vec<RunEntry> = state
        .analyses
        .entries()
        .into_iter()
        .filter(|e| out_of_scope(&caller, &e.apps).is_none())
        .collect();
    entries.sort_by(|a, b| {
        b.created_at
            .cmp(&a.created_at)
            .then(a.run_id.cmp(&b.run_id))
    });
    let total = entries.len() as u64;
    let skip = (u64::from(page) - 1) * u64::from(per_page);
    let analyses: Vec<AnalysisListItem> = entries
        .into_iter()
        .skip(usize::try_from(skip).unwrap_or(usize::MAX))
        .take(per_page as usize)
        .map(|e| AnalysisListItem {
            analysis_id: e.analysis_id,
            run_id: e.run_id,
            app_ids: e.apps,
            window_start: e.window.start.to_rfc3339(),
            window_end: e.window.end.to_rfc3339(),
            created_at: e.created_at,
        })
        .collect();
    let next_page = (skip + u64::from(per_page) < total).then_some(page + 1);
    Ok(Json(AnalysisPage {
        analyses,
        page,
        per_page,
        total,
        next_page,
    })
    .into_response())
}

/// A report file of a committed analysis, named after its run.
async fn report_file(
    state: &AppState,
    headers: &HeaderMap,
    analysis_id: &str,
    file: &str,
    content_type: &'static str,
) -> ApiResult {
    let caller = caller(state, headers)?;
    let entry = readable(state, &caller, analysis_id).await?;
    let name = format!("tunelake-{}-{file}", entry.run_id);
    download(state, &entry, None, file, content_type, &name).await
}

/// The report as one self-contained HTML page.
#[utoipa::path(
    get,
    path = "/v2/analysis/{analysis_id}/report.html",
    params(AnalysisPath),
    responses(
        (status = 200, description = "The page", content_type = "text/html", body = String),
        ReadErrors,
    ),
    security(("api_key" = []))
)]
pub async fn report_html(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(AnalysisPath { analysis_id }): Path<AnalysisPath>,
) -> ApiResult {
    report_file(
        &state,
        &headers,
        &analysis_id,
        "report.html",
        "text/html; charset=utf-8",
    )
    .await
}

/// The report as Markdown.
#[utoipa::path(
    get,
    path = "/v2/analysis/{analysis_id}/report.md",
    params(AnalysisPath),
    responses(
        (status = 200, description = "The Markdown", content_type = "text/markdown", body = String),
        ReadErrors,
    ),
    security(("api_key" = []))
)]
pub async fn report_md(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(AnalysisPath { analysis_id }): Path<AnalysisPath>,
) -> ApiResult {
    report_file(
        &state,
        &headers,
        &analysis_id,
        "report.md",
        "text/markdown; charset=utf-8",
    )
    .await
}

/// One snippet file of a supply (e.g. `vllm.sh`).
#[utoipa::path(
    get,
    path = "/v2/analysis/{analysis_id}/snippets/{supply_id}/{file}",
    params(
        ("analysis_id" = String, Path, pattern = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$", description = "The analysis id (a UUID)"),
        ("supply_id" = String, Path, pattern = r"^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$", description = "The supply"),
        ("file" = String, Path, pattern = r"^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$", description = "The snippet's file name"),
    ),
    responses(
        (status = 200, description = "The file", content_type = "text/plain", body = String),
        ReadErrors,
    ),
    security(("api_key" = []))
)]
pub async fn snippet(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path((analysis_id, supply_id, file)): Path<(String, String, String)>,
) -> ApiResult {
    let caller = caller(&state, &headers)?;
    safe_segment(&supply_id, "supply_id")?;
    safe_segment(&file, "file")?;
    let entry = readable(&state, &caller, &analysis_id).await?;
    let relative = format!("snippets/{supply_id}/{file}");
    download(
        &state,
        &entry,
        None,
        &relative,
        "text/plain; charset=utf-8",
        &file,
    )
    .await
}

/// One output table of the run, as Parquet or CSV (`{table}.parquet`, `{table}.csv`).
#[utoipa::path(
    get,
    path = "/v2/analysis/{analysis_id}/tables/{file}",
    params(
        ("analysis_id" = String, Path, pattern = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$", description = "The analysis id (a UUID)"),
        ("file" = String, Path, pattern = r"^[a-z_]+\.(parquet|csv)$", description = "`<table>.parquet` or `<table>.csv`"),
    ),
    responses(
        (status = 200, description = "The table", content(
            (Vec<u8> = "application/vnd.apache.parquet"),
            (String = "text/csv"),
        )),
        ReadErrors,
    ),
    security(("api_key" = []))
)]
pub async fn table(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path((analysis_id, file)): Path<(String, String)>,
) -> ApiResult {
    let caller = caller(&state, &headers)?;
    safe_segment(&file, "file")?;
    let entry = readable(&state, &caller, &analysis_id).await?;
    let (name, csv) = match (file.strip_suffix(".parquet"), file.strip_suffix(".csv")) {
        (Some(name), _) => (name, false),
        (_, Some(name)) => (name, true),
        _ => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "file must end in .parquet or .csv",
            )
            .field("file"));
        }
    };
    if !tables::definitions().iter().any(|d| d.name == name) {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no table `{name}`"),
        ));
    }
    let filename = format!("tunelake-{}-{file}", entry.run_id);
    if !csv {
        return download(
            &state,
            &entry,
            Some(name),
            "",
            "application/vnd.apache.parquet",
            &filename,
        )
        .await;
    }
    let parquet = output::read_run_file(
        state.analyses.out(),
        &entry.run_id,
        entry.run_date(),
        Some(name),
        "",
    )
    .await?
    .ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no table `{name}` in this analysis"),
        )
    })?;
    let text = tokio::task::spawn_blocking({
        let name = name.to_string();
        move || output::parquet_to_csv(parquet, &name)
    })
    .await
    .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))??;
    attachment(text, "text/csv; charset=utf-8", &filename)
}

/// Liveness: the process answers.
#[utoipa::path(
    get,
    path = "/healthz",
    responses((status = 200, description = "Alive", content_type = "text/plain", body = String))
)]
pub async fn healthz() -> &'static str {
    "ok\n"
}

/// The server's metrics in the Prometheus text format.
#[utoipa::path(
    get,
    path = "/metrics",
    responses((status = 200, description = "Prometheus exposition", content_type = "text/plain", body = String))
)]
pub async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(),
    )
        .into_response()
}
