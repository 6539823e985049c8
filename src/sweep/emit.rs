//! Launch files for clusters: a SLURM array script and a Kubernetes Indexed Job manifest. Both
//! check that the node has a usable GPU (`nasrob doctor --require cuda`) and then run `nasrob sweep
//! run --device cuda` with the shard taken from the scheduler's environment; rerunning a shard
//! skips its finished units, so retries and requeues are safe.

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
    /// The nasrob binary as the nodes reach it (SLURM): an absolute path, or a name on their PATH.
    pub binary: String,
    /// Data folder on the nodes, exported as NASROB_DATA_DIR (SLURM).
    pub data_dir: Option<String>,
    /// SLURM partition and account, when the cluster wants them.
    pub partition: Option<String>,
    pub account: Option<String>,
    /// SLURM wall-time limit (`MM`, `HH:MM:SS` or `D-HH:MM:SS`).
    pub time: String,
    /// Seconds before the time limit at which a SLURM task requeues itself.
    pub warn_seconds: u32,
    pub cpus_per_shard: usize,
    /// Memory per shard (`32G`, `64000M`, ...).
    pub mem: String,
    /// Container image with nasrob (Kubernetes).
    pub image: String,
    /// PersistentVolumeClaim holding the output folder (Kubernetes), mounted at /bench.
    pub volume_claim: String,
    /// PersistentVolumeClaim holding the datasets (Kubernetes), mounted read-only at /data.
    pub data_claim: String,
    pub retries: usize,
    pub all_archs: bool,
    /// Shards that share one task's GPUs, as separate processes (the config's
    /// `cluster.shards_per_gpu`): small networks leave a GPU idle with one.
    pub shards_per_task: usize,
    /// `cuda` (the default: the task checks for a usable GPU first) or `cpu` (no GPU requested).
    pub device: String,
}

impl EmitSpec {
    /// Scheduler tasks (array tasks, indexed pods): the shards in groups of `shards_per_task`.
    pub fn tasks(&self) -> usize {
        self.shards.div_ceil(self.shards_per_task.max(1))
    }

    fn requires_gpu(&self) -> bool {
        self.device == "cuda"
    }
}

/// Checks a value that goes into a launch file against the form its scheduler accepts.
fn check_form(flag: &str, value: &str, ok: bool, form: &str) -> Result<()> {
    if ok { Ok(()) } else { Err(Error::input(format!("--{flag} '{value}' is not {form}"))) }
}

fn is_slurm_time(value: &str) -> bool {
    let (days, clock) = match value.split_once('-') {
        Some((d, rest)) => (Some(d), rest),
        None => (None, value),
    };
    let digits = |t: &str| !t.is_empty() && t.len() <= 2 && t.bytes().all(|b| b.is_ascii_digit());
    let days_ok = days.is_none_or(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()));
    let parts: Vec<&str> = clock.split(':').collect();
    let clock_ok = match parts.as_slice() {
        [minutes] if days.is_none() => !minutes.is_empty() && minutes.bytes().all(|b| b.is_ascii_digit()),
        [h, m, s] => digits(h) && digits(m) && digits(s),
        [h, m] if days.is_some() => digits(h) && digits(m),
        _ => false,
    };
    days_ok && clock_ok
}

fn is_memory(value: &str) -> bool {
    let digits = value.trim_end_matches(['K', 'M', 'G', 'T']);
    !digits.is_empty() && digits.len() + 1 >= value.len() && digits.bytes().all(|b| b.is_ascii_digit())
}

fn is_name(value: &str) -> bool {
    !value.is_empty() && value.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
}

fn check(spec: &EmitSpec) -> Result<()> {
    if spec.shards == 0 || spec.parallel == 0 || spec.cpus_per_shard == 0 || spec.shards_per_task == 0 {
        return Err(Error::input(
            "--shards, --parallel, --cpus-per-shard and shards per GPU must be positive",
        ));
    }
    if !["cuda", "cpu"].contains(&spec.device.as_str()) {
        return Err(Error::input(format!("--device '{}' is not cuda or cpu", spec.device)));
    }
    if spec.requires_gpu() && spec.gpus_per_shard == 0 {
        return Err(Error::input("--gpus-per-shard 0 needs --device cpu"));
    }
    check_form("time", &spec.time, is_slurm_time(&spec.time), "a SLURM time (MM, HH:MM:SS or D-HH:MM:SS)")?;
    check_form("mem", &spec.mem, is_memory(&spec.mem), "a memory size like 32G or 64000M")?;
    for (flag, value) in [("partition", &spec.partition), ("account", &spec.account)] {
        if let Some(value) = value {
            check_form(flag, value, is_name(value), "a name (letters, digits, '_', '.', '-')")?;
        }
    }
    if spec.binary.trim().is_empty() {
        return Err(Error::input("--binary is empty: give the nasrob binary's path on the nodes"));
    }
    Ok(())
}

fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// An sbatch script for a job array of `tasks()` tasks, `gpus_per_shard` GPUs each, every task
/// running `shards_per_task` shards side by side. It checks the binary and the GPU before any
/// work, so a node without either stops with a message instead of running on the CPU.
pub fn slurm(spec: &EmitSpec) -> Result<String> {
    check(spec)?;
    let all = if spec.all_archs { " --all-15625" } else { "" };
    let mut directives = String::new();
    if spec.gpus_per_shard > 0 {
        directives.push_str(&format!("#SBATCH --gres=gpu:{}\n", spec.gpus_per_shard));
    }
    if let Some(partition) = &spec.partition {
        directives.push_str(&format!("#SBATCH --partition={partition}\n"));
    }
    if let Some(account) = &spec.account {
        directives.push_str(&format!("#SBATCH --account={account}\n"));
    }
    let data_dir = match &spec.data_dir {
        Some(dir) => format!("export NASROB_DATA_DIR={}\n", quote(dir)),
        None => String::new(),
    };
    let gpu_check = if spec.requires_gpu() {
        "# Stops here, with the reason, when this node has no usable GPU.\n\"$NASROB\" doctor --require cuda\n"
    } else {
        ""
    };
    Ok(format!(
        "#!/bin/bash
# nasrob sweep: array task t runs shards t*{per}..t*{per}+{last_of_task} of {shards} side by side; each shard
# runs its units and skips those already finished, so a requeued or resubmitted task continues
# where it stopped.
#SBATCH --job-name=nasrob-sweep
#SBATCH --array=0-{last}%{parallel}
#SBATCH --cpus-per-task={cpus}
#SBATCH --mem={mem}
#SBATCH --time={time}
{directives}#SBATCH --requeue
#SBATCH --signal=B:USR1@{warn}
#SBATCH --output=nasrob-sweep-%A_%a.log

set -euo pipefail
NASROB={binary}
if ! command -v \"$NASROB\" >/dev/null 2>&1; then
  echo \"nasrob-sweep: $NASROB is not an executable on ${{HOSTNAME:-this node}}; copy nasrob (and its libtorch) where the nodes see it and emit again with --binary\" >&2
  exit 2
fi
{data_dir}{gpu_check}# {warn} s before the time limit SLURM sends USR1 (--signal above): the shards stop at the end of
# their current epoch with a checkpoint (so {warn} s must hold one epoch), then the task requeues
# itself. Run again, a shard skips its finished units and resumes the current one from that
# checkpoint, so a shard longer than the limit completes over requeues.
pids=()
requeued=0
trap 'requeued=1; echo \"nasrob-sweep: the time limit is near; stopping the shards at their next checkpoint\" >&2; kill -TERM \"${{pids[@]}}\" 2>/dev/null || true; wait; echo \"nasrob-sweep: requeueing job $SLURM_JOB_ID\" >&2; scontrol requeue \"$SLURM_JOB_ID\"' USR1
first=$(( SLURM_ARRAY_TASK_ID * {per} ))
for (( shard = first; shard < first + {per} && shard < {shards}; shard++ )); do
  \"$NASROB\" sweep run --config {config} --out {out} --shard \"$shard/{shards}\"{all} --device {device} --json &
  pids+=($!)
done
set +e
status=0
for pid in \"${{pids[@]}}\"; do
  wait \"$pid\"
  code=$?
  if [ \"$requeued\" = 1 ]; then
    # The warning interrupted the wait; the trap has stopped the shards and requeued the task.
    exit 0
  fi
  if [ \"$code\" -ne 0 ] && [ \"$status\" -eq 0 ]; then status=$code; fi
done
exit \"$status\"
",
        per = spec.shards_per_task,
        last_of_task = spec.shards_per_task - 1,
        last = spec.tasks() - 1,
        parallel = spec.parallel,
        cpus = spec.cpus_per_shard * spec.shards_per_task,
        mem = task_memory(spec),
        time = spec.time,
        warn = spec.warn_seconds,
        binary = quote(&spec.binary),
        config = quote(&spec.config),
        out = quote(&spec.out),
        shards = spec.shards,
        device = spec.device,
    ))
}

/// A Kubernetes Indexed Job: `shards` completions, per-index retries, `gpus_per_shard` GPUs per
/// pod, the output folder on a PersistentVolumeClaim mounted at /bench and the datasets on one
/// mounted read-only at /data. The pod checks the GPU before any work.
pub fn kubernetes(spec: &EmitSpec) -> Result<String> {
    check(spec)?;
    let all = if spec.all_archs { " --all-15625" } else { "" };
    let check = if spec.requires_gpu() { "nasrob doctor --require cuda && " } else { "" };
    let run = format!(
        "nasrob sweep run --config {} --out {} --shard \"$shard/{}\"{all} --device {} --json",
        quote(&spec.config),
        quote(&spec.out),
        spec.shards,
        spec.device,
    );
    // Pod i runs shards i*S..i*S+S-1; a SIGTERM reaches every shard, each stops at its next
    // checkpoint, and the pod exits with the first failure's code.
    let script = format!(
        "{check}pids=''; first=$((JOB_COMPLETION_INDEX * {per})); shard=$first; \
         while [ $shard -lt $((first + {per})) ] && [ $shard -lt {shards} ]; do {run} & pids=\"$pids $!\"; \
         shard=$((shard + 1)); done; trap 'kill -TERM $pids 2>/dev/null' TERM; status=0; \
         for pid in $pids; do wait $pid; code=$?; [ $code -ne 0 ] && [ $status -eq 0 ] && status=$code; done; \
         exit $status",
        per = spec.shards_per_task,
        shards = spec.shards,
    );
    Ok(format!(
        "# nasrob sweep as an Indexed Job: pod i (JOB_COMPLETION_INDEX) runs shards i*{per}..i*{per}+{last_of_task} of
# {all_shards} side by side; a failed pod is retried with the same index and skips the units it
# already finished. A pod told to stop (SIGTERM) ends the current epoch with a checkpoint within
# the grace period, and its retry resumes from it.
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
      terminationGracePeriodSeconds: 300
      containers:
        - name: nasrob
          image: {image}
          command: [\"/bin/sh\", \"-c\"]
          args:
            - {script}
          env:
            - name: NASROB_DATA_DIR
              value: /data
          resources:
            limits:
{gpus}              cpu: {cpus}
              memory: {mem}
          volumeMounts:
            - name: bench
              mountPath: /bench
            - name: data
              mountPath: /data
              readOnly: true
      volumes:
        - name: bench
          persistentVolumeClaim:
            claimName: {claim}
        - name: data
          persistentVolumeClaim:
            claimName: {data_claim}
            readOnly: true
",
        shards = spec.tasks(),
        per = spec.shards_per_task,
        last_of_task = spec.shards_per_task - 1,
        all_shards = spec.shards,
        parallel = spec.parallel,
        retries = spec.retries,
        image = json_str(&spec.image),
        script = json_str(&script),
        gpus = if spec.gpus_per_shard > 0 {
            format!("              nvidia.com/gpu: {}\n", spec.gpus_per_shard)
        } else {
            String::new()
        },
        cpus = spec.cpus_per_shard * spec.shards_per_task,
        mem = json_str(&format!("{}i", task_memory(spec))),
        claim = json_str(&spec.volume_claim),
        data_claim = json_str(&spec.data_claim),
    ))
}

/// Memory per task: `--mem` per shard times the shards a task runs.
fn task_memory(spec: &EmitSpec) -> String {
    let digits = spec.mem.trim_end_matches(['K', 'M', 'G', 'T']);
    let unit = &spec.mem[digits.len()..];
    match digits.parse::<u64>() {
        Ok(amount) => format!("{}{unit}", amount * spec.shards_per_task as u64),
        Err(_) => spec.mem.clone(),
    }
}

/// A double-quoted YAML scalar (JSON string syntax is valid YAML).
fn json_str(s: &str) -> String {
    serde_json::Value::String(s.to_string()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(shards: usize, per_task: usize, device: &str, gpus: usize) -> EmitSpec {
        EmitSpec {
            config: "demo".into(),
            out: "/o".into(),
            shards,
            parallel: 1,
            gpus_per_shard: gpus,
            binary: "/bin/nasrob".into(),
            data_dir: None,
            partition: None,
            account: None,
            time: "1:00:00".into(),
            warn_seconds: 60,
            cpus_per_shard: 4,
            mem: "16G".into(),
            image: "nasrob".into(),
            volume_claim: "b".into(),
            data_claim: "d".into(),
            retries: 1,
            all_archs: false,
            shards_per_task: per_task,
            device: device.into(),
        }
    }

    #[test]
    fn tasks_group_shards_and_scale_their_resources() {
        let script = slurm(&spec(5, 2, "cuda", 1)).unwrap();
        for line in [
            "#SBATCH --array=0-2%1",
            "#SBATCH --cpus-per-task=8",
            "#SBATCH --mem=32G",
            "#SBATCH --gres=gpu:1",
        ] {
            assert!(script.contains(line), "missing {line}:\n{script}");
        }
        let manifest = kubernetes(&spec(5, 2, "cpu", 0)).unwrap();
        assert!(manifest.contains("completions: 3") && !manifest.contains("nvidia.com/gpu"), "{manifest}");
        assert!(
            !manifest.contains("doctor --require cuda") && manifest.contains("memory: \"32Gi\""),
            "{manifest}"
        );
        let err = slurm(&spec(5, 1, "cuda", 0)).unwrap_err();
        assert!(err.to_string().contains("--gpus-per-shard 0 needs --device cpu"), "{err}");
        assert!(slurm(&spec(5, 0, "cuda", 1)).is_err());
    }
}
