//! TEMPORARY interface placeholder until the catalog branch merges (do not land).
use crate::error::{Error, Result};
pub struct ModelSpec {
    pub num_attention_heads: u32,
}
pub struct GpuSpec;
pub struct Catalog;
impl Catalog {
    pub fn bundled() -> Self {
        Catalog
    }
    pub fn model(&self, _n: &str) -> Result<ModelSpec> {
        Ok(ModelSpec {
            num_attention_heads: 32,
        })
    }
    pub fn gpu(&self, _n: &str) -> Result<GpuSpec> {
        Ok(GpuSpec)
    }
}
#[allow(dead_code)]
fn _e() -> Error {
    Error::Simulation(String::new())
}
