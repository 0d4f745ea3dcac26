//! `serve`: the SageMaker container entry point.

use clap::Parser;
use hf_inference_host::init_logging;

/// jemalloc, whose background thread gives freed memory back to the system within about half a
/// second (`dirty_decay_ms`), so RSS returns near its idle level after a burst of large requests
/// (glibc's malloc keeps what it grew to). Measured in docs/operations.md.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's options, read from this symbol once when it starts.
#[allow(unsafe_code, non_upper_case_globals)] // an exported symbol (jemalloc's `malloc_conf`)
#[export_name = "_rjem_malloc_conf"]
pub static malloc_conf: &[u8] = b"background_thread:true,dirty_decay_ms:500,muzzy_decay_ms:0\0";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = hf_inference_sagemaker::Config::parse();
    init_logging(config.log_format())?;
    hf_inference_sagemaker::run(config).await
}
