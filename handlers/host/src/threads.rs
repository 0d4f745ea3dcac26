//! The compute threads (`HF_NUM_THREADS`): how many threads a model call splits its work
//! between (the kernels' team, rayon's global pool), by default one per CPU the process may
//! use: the container's CPU quota, not the host's cores.
//!
//! The quota is read from cgroup v2's `/sys/fs/cgroup/cpu.max` (`"150000 100000"`: 1.5 CPUs;
//! `"max 100000"`: none), else cgroup v1's `/sys/fs/cgroup/cpu/cpu.cfs_quota_us` and
//! `cpu.cfs_period_us` (`-1`: none); a container sees its own cgroup at those paths. A
//! fractional quota rounds down (1.5 CPUs: one thread, at least one), and a team with more
//! threads than the quota allows (`HF_NUM_THREADS` set higher) yields the CPU while it waits
//! instead of spinning, so it never burns the time the quota would take back from the thread
//! that does the work.

use hf_inference_core::kernels::team::{self, ThreadSettings};

/// cgroup v2's `cpu.max`: the CPUs its quota allows, `None` without a quota.
pub fn parse_cpu_max(text: &str) -> Option<f64> {
    let mut parts = text.split_whitespace();
    let quota: f64 = parts.next()?.parse().ok()?;
    let period: f64 = parts.next().map_or(Some(100_000.0), |p| p.parse().ok())?;
    (quota > 0.0 && period > 0.0).then(|| quota / period)
}

/// cgroup v1's `cpu.cfs_quota_us` and `cpu.cfs_period_us`: the CPUs allowed, `None` without a
/// quota (`-1`).
pub fn parse_cfs(quota: &str, period: &str) -> Option<f64> {
    let quota: f64 = quota.trim().parse().ok()?;
    let period: f64 = period.trim().parse().ok()?;
    (quota > 0.0 && period > 0.0).then(|| quota / period)
}

/// The CPUs this process's cgroup may use, `None` without a quota (or without cgroups).
pub fn cgroup_cpus() -> Option<f64> {
    let read = |p: &str| std::fs::read_to_string(p).ok();
    if let Some(max) = read("/sys/fs/cgroup/cpu.max") {
        return parse_cpu_max(&max);
    }
    ["/sys/fs/cgroup/cpu", "/sys/fs/cgroup/cpu,cpuacct"]
        .iter()
        .find_map(|dir| {
            parse_cfs(
                &read(&format!("{dir}/cpu.cfs_quota_us"))?,
                &read(&format!("{dir}/cpu.cfs_period_us"))?,
            )
        })
}

/// The settings for `requested` threads (`HF_NUM_THREADS`; `None` or 0: the default) given the
/// cores the process may run on (`available_parallelism`: affinity and quota, rounded down)
/// and the cgroup's quota.
pub fn thread_settings(
    requested: Option<usize>,
    cores: usize,
    quota: Option<f64>,
) -> ThreadSettings {
    let cores = cores.max(1);
    // the quota binds when it is what rounded `cores` down; otherwise the affinity mask does
    let cpus = quota
        .filter(|q| q.floor() as usize <= cores)
        .unwrap_or(cores as f64);
    ThreadSettings {
        threads: requested.filter(|&n| n > 0).unwrap_or(cores),
        cpus,
    }
}

/// Sets the process's compute threads from `HF_NUM_THREADS` (`requested`) and the cgroup's CPU
/// quota; call once at start-up, before the model loads. Returns the settings in force.
pub fn configure_threads(requested: Option<usize>) -> ThreadSettings {
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let settings = thread_settings(requested, cores, cgroup_cpus());
    if !team::configure(settings) {
        tracing::warn!("the compute threads were already set; HF_NUM_THREADS is ignored");
    }
    let settings = team::settings();
    tracing::info!(
        threads = settings.threads,
        cpus = settings.cpus,
        "compute threads"
    );
    settings
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cgroup_quotas_parse() {
        assert_eq!(parse_cpu_max("150000 100000\n"), Some(1.5));
        assert_eq!(parse_cpu_max("max 100000\n"), None);
        assert_eq!(parse_cpu_max("200000"), Some(2.0));
        assert_eq!(parse_cpu_max(""), None);
        assert_eq!(parse_cfs("50000\n", "100000\n"), Some(0.5));
        assert_eq!(parse_cfs("-1\n", "100000\n"), None);
        assert_eq!(parse_cfs("x", "100000"), None);
    }

    #[test]
    fn threads_default_to_the_quota_and_a_larger_team_does_not_spin() {
        // 1.5 CPUs on a 16-core host: std rounds the quota down to one core
        let s = thread_settings(None, 1, Some(1.5));
        assert_eq!((s.threads, s.cpus), (1, 1.5));
        // asked for 2 on 1.5 CPUs: two threads that yield instead of spinning
        let s = thread_settings(Some(2), 1, Some(1.5));
        assert_eq!(s.threads, 2);
        assert!(s.threads as f64 > s.cpus);
        // no quota: the cores; a quota larger than the affinity mask does not bind
        assert_eq!(thread_settings(None, 8, None).threads, 8);
        assert_eq!(thread_settings(None, 2, Some(6.0)).cpus, 2.0);
        assert_eq!(thread_settings(Some(0), 4, None).threads, 4);
    }
}
