//! `tunelake serve`: seed 000's analysis API and the downloads of committed runs, over HTTP/1.1
//! (axum on tokio). TLS is left to a reverse proxy in front.
//!
//! Routes: `POST /v2/analysis/system_recommendations`, `GET /v2/analysis/{id}` (+ `/report.html`,
//! `/report.md`, `/snippets/{supply}/{file}`, `/tables/{table}.parquet|.csv`), `GET /v2/analyses`,
//! `GET /healthz`, `GET /metrics`, `GET /openapi.json`.

mod analyses;
mod api;
pub mod keys;
mod metrics;
mod routes;

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use utoipa::OpenApi;

use crate::error::{Error, Result};
use analyses::Analyses;
pub use api::{AnalysisRequest, ApiDoc};
pub use keys::Keys;
use metrics::Metrics;
pub use routes::{ApiError, parse_analysis_request};

/// How the server runs.
pub struct ServeOptions {
    /// The pipeline file whose runs it serves and whose code path analyses take.
    pub pipeline: PathBuf,
    pub keys: Keys,
    /// Longest a request is answered in: GETs past it get 503; an analysis past it answers 202.
    pub request_timeout: Duration,
    /// Largest request body accepted (413 above).
    pub body_limit: usize,
}

pub struct AppState {
    analyses: Arc<Analyses>,
    keys: Keys,
    metrics: Arc<Metrics>,
    request_timeout: Duration,
}

/// A server ready to run on a listener.
pub struct Server {
    state: Arc<AppState>,
    body_limit: usize,
}

impl Server {
    /// Checks the pipeline file and indexes the committed runs.
    pub async fn new(options: ServeOptions) -> Result<Server> {
        if options.keys.is_empty() {
            return Err(Error::Keys {
                source_name: "the server's keys".into(),
                message: "no key is defined: create one with `tunelake keys create`".into(),
            });
        }
        let metrics = Arc::new(Metrics::default());
        let analyses = Arc::new(Analyses::new(options.pipeline, Arc::clone(&metrics))?);
        analyses.refresh(true).await?;
        Ok(Server {
            state: Arc::new(AppState {
                analyses,
                keys: options.keys,
                metrics,
                request_timeout: options.request_timeout,
            }),
            body_limit: options.body_limit,
        })
    }

    fn router(&self) -> Router {
        let bounded = Router::new()
            .route("/v2/analysis/{analysis_id}", get(routes::get_analysis))
            .route(
                "/v2/analysis/{analysis_id}/report.html",
                get(routes::report_html),
            )
            .route(
                "/v2/analysis/{analysis_id}/report.md",
                get(routes::report_md),
            )
            .route(
                "/v2/analysis/{analysis_id}/snippets/{supply_id}/{file}",
                get(routes::snippet),
            )
            .route(
                "/v2/analysis/{analysis_id}/tables/{file}",
                get(routes::table),
            )
            .route("/v2/analyses", get(routes::list_analyses))
            .route("/healthz", get(routes::healthz))
            .route("/metrics", get(routes::metrics))
            .route("/openapi.json", get(openapi))
            .layer(middleware::from_fn_with_state(
                Arc::clone(&self.state),
                bounded_time,
            ));
        Router::new()
            .route(
                "/v2/analysis/system_recommendations",
                post(routes::create_analysis),
            )
            .merge(bounded)
            .fallback(not_found)
            .layer(DefaultBodyLimit::max(self.body_limit))
            .layer(middleware::from_fn_with_state(
                Arc::clone(&self.state),
                observe,
            ))
            .with_state(Arc::clone(&self.state))
    }

    /// Serves on `listener` until `shutdown` completes, then finishes the requests in flight.
    pub async fn run(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<()> {
        let address = listener
            .local_addr()
            .map(|a| a.to_string())
            .unwrap_or_default();
        tracing::info!(%address, "serving");
        axum::serve(listener, self.router())
            .with_graceful_shutdown(shutdown)
            .await
            .map_err(|e| Error::Listen {
                address,
                message: e.to_string(),
            })
    }
}

/// Binds a listener, with the address in the error.
pub async fn bind(address: &str) -> Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(address)
        .await
        .map_err(|e| Error::Listen {
            address: address.to_string(),
            message: e.to_string(),
        })
}

async fn openapi() -> Response {
    match ApiDoc::openapi().to_json() {
        Ok(json) => ([(header::CONTENT_TYPE, "application/json")], json).into_response(),
        Err(e) => ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("serialising the OpenAPI document: {e}"),
        )
        .into_response(),
    }
}

async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "no such route")
}

/// GETs end within the request timeout (503 past it).
async fn bounded_time(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Response {
    match tokio::time::timeout(state.request_timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "the request timed out").into_response()
        }
    }
}

/// Logs and counts every answer by route template (never the key), and marks it `nosniff`.
async fn observe(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    // A fixed set of labels: a made-up method must not add a series.
    let method = match *request.method() {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::HEAD => "HEAD",
        _ => "OTHER",
    };
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched".to_string(), |p| p.as_str().to_string());
    let mut response = next.run(request).await;
    let status = response.status().as_u16();
    let seconds = started.elapsed().as_secs_f64();
    state.metrics.request(method, &route, status, seconds);
    tracing::debug!(%method, %route, status, seconds, "answered");
    response.headers_mut().insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}
