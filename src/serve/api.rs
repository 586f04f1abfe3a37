//! What the API accepts and answers, and its OpenAPI 3.1 document, generated from these types and
//! the handlers' annotations (served at `/openapi.json`).

use serde::{Deserialize, Serialize};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityScheme};
use utoipa::{IntoParams, Modify, OpenApi, ToSchema};

use crate::recommend::{Analysis, PredictedImpact, SystemRecommendation};

/// Seed 000's analysis request.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AnalysisRequest {
    /// Apps to analyse: at least one, each within the key's scope.
    #[schema(min_items = 1)]
    pub app_ids: Vec<String>,
    /// Days before the window's end to analyse: 1 up to what the lake retains.
    #[serde(default = "default_period")]
    #[schema(default = 30, minimum = 1, maximum = 3650)]
    pub analysis_period_days: u32,
}

fn default_period() -> u32 {
    30
}

/// An analysis still running: poll `location`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AnalysisPending {
    pub analysis_id: String,
    /// Always `running`.
    pub status: String,
    /// Where the finished analysis will be.
    pub location: String,
}

/// A committed analysis, as listed.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AnalysisListItem {
    pub analysis_id: String,
    pub run_id: String,
    /// Apps the analysis covers.
    pub app_ids: Vec<String>,
    /// Analysis window, RFC 3339, `[start, end)`.
    pub window_start: String,
    pub window_end: String,
    pub created_at: String,
}

/// One page of committed analyses, newest first.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AnalysisPage {
    pub analyses: Vec<AnalysisListItem>,
    pub page: u32,
    pub per_page: u32,
    pub total: u64,
    /// The next page's number, absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_page: Option<u32>,
}

/// Paging of `GET /v2/analyses`.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Page number, from 1.
    #[param(minimum = 1, maximum = 1000000)]
    pub page: Option<u32>,
    /// Analyses per page, 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    pub per_page: Option<u32>,
}

/// Every error answer.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: String,
    /// The request field at fault, where one is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

/// Adds the `X-API-Key` scheme.
struct ApiKeyHeader;

impl Modify for ApiKeyHeader {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-API-Key",
                "A key created with `tunelake keys create`, scoped to the apps it may analyse.",
            ))),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "tunelake analysis API",
        description = "System-level tuning recommendations for an LLM-serving fleet, from its request logs and GPU telemetry (seed 000's analysis API), and the reports of committed runs."
    ),
    paths(
        super::routes::create_analysis,
        super::routes::get_analysis,
        super::routes::list_analyses,
        super::routes::report_html,
        super::routes::report_md,
        super::routes::snippet,
        super::routes::table,
        super::routes::healthz,
        super::routes::metrics,
    ),
    components(schemas(
        AnalysisRequest,
        Analysis,
        SystemRecommendation,
        PredictedImpact,
        AnalysisPending,
        AnalysisPage,
        AnalysisListItem,
        ErrorBody
    )),
    modifiers(&ApiKeyHeader)
)]
pub struct ApiDoc;
