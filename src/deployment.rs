//! From a pipeline file's supply to the simulator's [`Deployment`]: the one bridge between the
//! configuration vocabulary and the engine model, so the simulator knows nothing of pipeline files.

use crate::catalog::Catalog;
use crate::config::eval::CaseSpec;
use crate::config::{Engine, Supply};
use crate::error::{Error, Result};
use crate::knobs::{Knob, ServingConfig};
use crate::simulation::{Deployment, Router, SchedulerKind};

/// The scheduler that models an engine (Triton serves LLMs through TensorRT-LLM's batch manager;
/// a hosted API is never simulated).
fn scheduler(engine: Engine) -> SchedulerKind {
    match engine {
        Engine::Vllm | Engine::Openai => SchedulerKind::VllmV1,
        Engine::Trtllm | Engine::Triton => SchedulerKind::Trtllm,
        Engine::Tgi => SchedulerKind::Tgi,
        Engine::Sglang => SchedulerKind::Sglang,
    }
}

/// What the supply runs today (an error for a hosted API, which has no deployment to simulate).
pub fn current(supply: &Supply) -> Result<ServingConfig> {
    supply.serving_config().ok_or_else(|| Error::Setting {
        key: format!("supplies[{}]", supply.id),
        message: "a hosted API has no GPU deployment to simulate".into(),
    })
}

/// The deployment of `config` for `supply` (default step model: calibration and the search install
/// fitted ones). The supply's `per_gpu_hour` prices its own GPU; any other GPU is priced from the
/// catalog.
pub fn of(supply: &Supply, config: &ServingConfig, catalog: &Catalog) -> Result<Deployment> {
    let gpu = catalog.gpu(&config.gpu)?;
    let mut d = Deployment::new(
        gpu.clone(),
        catalog.model(&supply.model)?.clone(),
        config.tensor_parallel_size,
        config.replicas,
    );
    d.config = ServingConfig {
        gpu: gpu.id.clone(),
        ..config.clone()
    };
    let own_gpu = supply.gpu.as_deref().map(|g| catalog.gpu(g)).transpose()?;
    if own_gpu.is_some_and(|own| own.id == gpu.id)
        && let Some(price) = supply.price.per_gpu_hour
    {
        d.price_per_gpu_hour = price;
    }
    d.engine.max_model_len = supply.config.max_model_len;
    d.scheduler = scheduler(supply.engine);
    if config.pd_disaggregation.is_some() {
        d.kv_link = Some(
            catalog
                .network(supply.config.kv_transfer_link.as_deref())?
                .clone(),
        );
    }
    d.draft_model = match &config.speculative {
        Some(s) => Some(catalog.model(&s.draft_model)?.clone()),
        None => None,
    };
    Ok(d)
}

/// The deployment the supply runs today.
pub fn current_deployment(supply: &Supply, catalog: &Catalog) -> Result<Deployment> {
    of(supply, &current(supply)?, catalog)
}

/// Checks that every self-hosted supply's current deployment can start (weights fit, the engine
/// accepts its settings), so `tunelake validate` refuses what a run would fail on.
pub fn check(supplies: &[Supply], catalog: &Catalog) -> Result<()> {
    for supply in supplies.iter().filter(|s| !s.engine.is_hosted()) {
        current_deployment(supply, catalog)?
            .validate()
            .map_err(|e| Error::Setting {
                key: format!("supplies[{}]", supply.id),
                message: e.to_string(),
            })?;
    }
    Ok(())
}

/// Today's deployment with `key=value` overrides (`tunelake simulate --set`): any knob by its name
/// (`speculative=DRAFT:K` or `off`), plus `router`, `max_model_len` and `num_gpu_blocks`.
pub fn with_overrides(
    supply: &Supply,
    catalog: &Catalog,
    assignments: &[String],
) -> Result<Deployment> {
    let mut config = current(supply)?;
    let mut engine_facts = Vec::new();
    for assignment in assignments {
        let (key, value) = assignment.split_once('=').ok_or_else(|| Error::Setting {
            key: assignment.clone(),
            message: "expected key=value".into(),
        })?;
        let (key, value) = (key.trim(), value.trim());
        match key {
            "router" | "max_model_len" | "num_gpu_blocks" => engine_facts.push((key, value)),
            _ => config.set(key.parse::<Knob>()?, value)?,
        }
    }
    let mut d = of(supply, &config, catalog)?;
    for (key, value) in engine_facts {
        let bad = |message: &str| Error::Setting {
            key: key.to_string(),
            message: format!("`{value}`: {message}"),
        };
        match key {
            "router" => {
                d.router = serde_json::from_value::<Router>(serde_json::Value::String(value.into()))
                    .map_err(|_| {
                        bad("expected round_robin, least_outstanding or prefix_affinity")
                    })?
            }
            "max_model_len" => {
                d.engine.max_model_len = Some(value.parse().map_err(|_| bad("not a number"))?)
            }
            _ => {
                d.engine.num_gpu_blocks_override =
                    Some(value.parse().map_err(|_| bad("not a number"))?)
            }
        }
    }
    d.validate().map_err(|e| Error::Setting {
        key: "--set".into(),
        message: e.to_string(),
    })?;
    Ok(d)
}

/// The deployment of an eval case: its GPU, model and TP with the engine's defaults, then the
/// knobs, dtype, context and KV block count the case states.
pub fn of_case(case: &CaseSpec, catalog: &Catalog) -> Result<Deployment> {
    let setting = |e: Error| Error::Setting {
        key: format!("case[{}]", case.id),
        message: e.to_string(),
    };
    let gpu = catalog.gpu(&case.gpu).map_err(setting)?;
    let model = catalog.model(&case.model).map_err(setting)?;
    let mut d = Deployment::new(gpu.clone(), model, case.tensor_parallel_size, 1);
    d.scheduler = scheduler(case.engine);
    d.config.apply(&case.engine.defaults());
    d.config.apply(&case.config);
    if let Some(dtype) = case.dtype {
        d.engine.dtype = dtype;
    }
    d.engine.max_model_len = case.config.max_model_len;
    d.engine.num_gpu_blocks_override = case.num_gpu_blocks;
    d.validate().map_err(setting)?;
    Ok(d)
}
