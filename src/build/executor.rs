//! Runs a graph of steps: dependencies first, independent steps in parallel up to
//! a job limit, cached keys skipped. The first failure stops new work; every
//! failure that happened is reported.
use std::collections::{HashMap, VecDeque};
use std::sync::{Condvar, Mutex};

use anyhow::{anyhow, bail, Result};
use serde_json::json;

use super::cache::{Cache, Record};
use super::explain;
use super::step::{Inputs, Output, RunCtx, Step};

pub struct ExecOptions {
    pub jobs: usize,
    /// Re-hash cached outputs before trusting them.
    pub verify_cache: bool,
}

/// What happened to one step.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub id: String,
    pub key_hash: String,
    pub outputs: Vec<Output>,
    /// `None` when the step was a cache hit; else why it ran.
    pub ran: Option<String>,
}

struct State {
    waiting_on: Vec<usize>,
    ready: VecDeque<usize>,
    done: Vec<Option<Outcome>>,
    in_flight: usize,
    finished: usize,
    failures: Vec<String>,
}

/// Executes `steps`; returns outcomes in the order of `steps`.
pub fn execute(steps: &[Box<dyn Step>], cache: &Cache, opts: &ExecOptions) -> Result<Vec<Outcome>> {
    let (deps, dependents) = wire(steps)?;
    let state = Mutex::new(State {
        waiting_on: deps.iter().map(Vec::len).collect(),
        ready: (0..steps.len()).filter(|&i| deps[i].is_empty()).collect(),
        done: vec![None; steps.len()],
        in_flight: 0,
        finished: 0,
        failures: Vec::new(),
    });
    let wake = Condvar::new();
    let workers = opts.jobs.clamp(1, steps.len().max(1));
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| worker(steps, &deps, &dependents, cache, opts, &state, &wake));
        }
    });
    let state = state
        .into_inner()
        .expect("no worker panicked holding the lock");
    if !state.failures.is_empty() {
        bail!("{}", state.failures.join("\n"));
    }
    if state.finished != steps.len() {
        bail!(
            "the build stopped with {} of {} steps done",
            state.finished,
            steps.len()
        );
    }
    Ok(state
        .done
        .into_iter()
        .map(|o| o.expect("every step finished"))
        .collect())
}

/// Resolves dependency ids to indices; refuses unknown ids, duplicates, cycles.
fn wire(steps: &[Box<dyn Step>]) -> Result<(Vec<Vec<usize>>, Vec<Vec<usize>>)> {
    let mut index = HashMap::new();
    for (i, step) in steps.iter().enumerate() {
        if index.insert(step.id(), i).is_some() {
            bail!("two build steps share the id {}", step.id());
        }
    }
    let mut deps = vec![Vec::new(); steps.len()];
    let mut dependents = vec![Vec::new(); steps.len()];
    for (i, step) in steps.iter().enumerate() {
        for dep in step.deps() {
            let &d = index
                .get(&dep)
                .ok_or_else(|| anyhow!("step {} depends on unknown step {dep}", step.id()))?;
            deps[i].push(d);
            dependents[d].push(i);
        }
    }
    check_acyclic(steps, &deps)?;
    Ok((deps, dependents))
}

fn check_acyclic(steps: &[Box<dyn Step>], deps: &[Vec<usize>]) -> Result<()> {
    // Kahn's algorithm: whatever cannot be ordered sits on a cycle.
    let mut remaining: Vec<usize> = deps.iter().map(Vec::len).collect();
    let mut dependents = vec![Vec::new(); steps.len()];
    for (i, ds) in deps.iter().enumerate() {
        for &d in ds {
            dependents[d].push(i);
        }
    }
    let mut queue: Vec<usize> = (0..steps.len()).filter(|&i| remaining[i] == 0).collect();
    let mut ordered = 0;
    while let Some(i) = queue.pop() {
        ordered += 1;
        for &j in &dependents[i] {
            remaining[j] -= 1;
            if remaining[j] == 0 {
                queue.push(j);
            }
        }
    }
    if ordered != steps.len() {
        let stuck: Vec<String> = (0..steps.len())
            .filter(|&i| remaining[i] > 0)
            .map(|i| steps[i].id())
            .collect();
        bail!("build steps form a cycle: {}", stuck.join(", "));
    }
    Ok(())
}

fn worker(
    steps: &[Box<dyn Step>],
    deps: &[Vec<usize>],
    dependents: &[Vec<usize>],
    cache: &Cache,
    opts: &ExecOptions,
    state: &Mutex<State>,
    wake: &Condvar,
) {
    loop {
        let (idx, inputs) = {
            let mut st = state.lock().expect("lock");
            let idx = loop {
                if !st.failures.is_empty() || st.finished == steps.len() {
                    return;
                }
                if let Some(i) = st.ready.pop_front() {
                    st.in_flight += 1;
                    break i;
                }
                if st.in_flight == 0 {
                    return;
                }
                st = wake.wait(st).expect("lock");
            };
            let inputs: Vec<Output> = deps[idx]
                .iter()
                .flat_map(|&d| st.done[d].as_ref().expect("deps are done").outputs.clone())
                .collect();
            (idx, inputs)
        };
        let result = run_one(steps[idx].as_ref(), inputs, cache, opts);
        let mut st = state.lock().expect("lock");
        st.in_flight -= 1;
        match result {
            Ok(outcome) => {
                st.done[idx] = Some(outcome);
                st.finished += 1;
                for &j in &dependents[idx] {
                    st.waiting_on[j] -= 1;
                    if st.waiting_on[j] == 0 {
                        st.ready.push_back(j);
                    }
                }
            }
            Err(err) => st
                .failures
                .push(format!("step {} failed: {err:#}", steps[idx].id())),
        }
        wake.notify_all();
    }
}

fn run_one(
    step: &dyn Step,
    inputs: Vec<Output>,
    cache: &Cache,
    opts: &ExecOptions,
) -> Result<Outcome> {
    let id = step.id();
    let inputs = Inputs::new(inputs, &cache.store);
    let key = json!({
        "step": id,
        "pxebuild": env!("CARGO_PKG_VERSION"),
        "key": step.key(&inputs)?,
    });
    let key_hash = Cache::key_hash(&key);
    if let Some(record) = cache.lookup(&key_hash, opts.verify_cache) {
        return Ok(Outcome {
            id,
            key_hash,
            outputs: record.outputs,
            ran: None,
        });
    }
    let reason = explain::reason(cache.last_key(&id).as_ref(), &key);
    let mut ctx = RunCtx::new(&inputs, &cache.store);
    step.run(&mut ctx)?;
    let outputs = ctx.into_outputs();
    let record = Record {
        id: id.clone(),
        key,
        outputs: outputs.clone(),
    };
    cache.record(&key_hash, &record)?;
    Ok(Outcome {
        id,
        key_hash,
        outputs,
        ran: Some(reason),
    })
}
