//! Launch files for clusters: a SLURM array script and a Kubernetes Indexed Job manifest. Both
//! run `nasrob sweep run` with the shard taken from the scheduler's environment; rerunning a
//! shard skips its finished units, so retries and requeues are safe.

use crate::{Error, Result};

/// What the launch files need to know.
#[derive(Clone, Debug)]
pub struct EmitSpec {
    /// The config as given to `sweep run` (a preset name or a path visible on the nodes).
    pub config: String,
    /// Output folder on shared storage (SLURM) or inside the mounted volume (Kubernetes).
    pub out: String,
    pub shards: usize,
    /// Shards running at once (SLURM `%` throttle, Kubernetes `parallelism`).
    pub parallel: usize,
    pub gpus_per_shard: usize,
    /// Container image with nasrob (Kubernetes).
    pub image: String,
    /// PersistentVolumeClaim holding the output folder (Kubernetes).
    pub volume_claim: String,
    pub retries: usize,
    pub all_archs: bool,
}

fn check(spec: &EmitSpec) -> Result<()> {
    if spec.shards == 0 || spec.parallel == 0 {
        return Err(Error::input("--shards and --parallel must be positive"));
    }
    Ok(())
}

fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// An sbatch script for a job array of `shards` tasks, one GPU each.
pub fn slurm(spec: &EmitSpec) -> Result<String> {
    check(spec)?;
    let all = if spec.all_archs { " --all-15625" } else { "" };
    Ok(format!(
        "#!/bin/bash
# nasrob sweep: one array task per shard; each task runs the units of its shard and skips
# those already finished, so a requeued or resubmitted task continues where it stopped.
#SBATCH --job-name=nasrob-sweep
#SBATCH --array=0-{last}%{parallel}
#SBATCH --gres=gpu:{gpus}
#SBATCH --cpus-per-task=8
#SBATCH --mem=32G
#SBATCH --time=24:00:00
#SBATCH --requeue
#SBATCH --output=nasrob-sweep-%A_%a.log

set -euo pipefail
srun nasrob sweep run --config {config} --out {out} --shard-count {shards}{all} --json
",
        last = spec.shards - 1,
        parallel = spec.parallel,
        gpus = spec.gpus_per_shard,
        config = quote(&spec.config),
        out = quote(&spec.out),
        shards = spec.shards,
    ))
}

/// A Kubernetes Indexed Job: `shards` completions, per-index retries, one GPU per pod, the output
/// folder on a PersistentVolumeClaim mounted at /bench.
pub fn kubernetes(spec: &EmitSpec) -> Result<String> {
    check(spec)?;
    let all = if spec.all_archs { "\n            - --all-15625" } else { "" };
    Ok(format!(
        "# nasrob sweep as an Indexed Job: pod i runs shard i (JOB_COMPLETION_INDEX); a failed pod is
# retried with the same index and skips the units it already finished.
apiVersion: batch/v1
kind: Job
metadata:
  name: nasrob-sweep
spec:
  completionMode: Indexed
  completions: {shards}
  parallelism: {parallel}
  backoffLimitPerIndex: {retries}
  maxFailedIndexes: {shards}
  template:
    spec:
      restartPolicy: Never
      containers:
        - name: nasrob
          image: {image}
          command: [\"nasrob\"]
          args:
            - sweep
            - run
            - --config
            - {config}
            - --out
            - {out}
            - --shard-count
            - \"{shards}\"
            - --json{all}
          resources:
            limits:
              nvidia.com/gpu: {gpus}
          volumeMounts:
            - name: bench
              mountPath: /bench
      volumes:
        - name: bench
          persistentVolumeClaim:
            claimName: {claim}
",
        shards = spec.shards,
        parallel = spec.parallel,
        retries = spec.retries,
        image = json_str(&spec.image),
        config = json_str(&spec.config),
        out = json_str(&spec.out),
        gpus = spec.gpus_per_shard,
        claim = json_str(&spec.volume_claim),
    ))
}

/// A double-quoted YAML scalar (JSON string syntax is valid YAML).
fn json_str(s: &str) -> String {
    serde_json::Value::String(s.to_string()).to_string()
}
