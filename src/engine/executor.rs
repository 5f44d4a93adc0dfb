//! Runs a graph of steps: dependencies first, independent steps in parallel up to
//! a job limit, cached keys skipped. The first failure stops new work; every
//! failure that happened is reported.
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Condvar, Mutex};

use anyhow::{anyhow, bail, Result};
use serde_json::{json, Value};

use super::cache::{Cache, Lookup, Record};
use super::explain;
use super::step::{InputSet, Inputs, Output, RunCtx, SharedInputError, Step};

pub struct ExecOptions {
    pub jobs: usize,
    /// Re-hash cached outputs before trusting them.
    pub verify_cache: bool,
    /// Say why each step ran (reads the keys of the last build).
    pub explain: bool,
    /// Advice a failure calls for (e.g. "no network? ..."), given once after
    /// all failures however many steps ran into it; the engine knows no
    /// causes itself, the caller does.
    pub advice: Option<Advice>,
}

/// The advice a step's error calls for, if any.
pub(crate) type Advice = fn(&anyhow::Error) -> Option<&'static str>;

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
    /// (step id, error) of every step that failed.
    failures: Vec<(String, anyhow::Error)>,
    /// Input sets already built, by dependency list: every node's steps
    /// depend on the same artifact steps.
    input_sets: HashMap<Vec<usize>, Arc<InputSet>>,
}

/// Executes `steps`; returns outcomes in the order of `steps`.
pub(crate) fn execute(
    steps: &[Box<dyn Step>],
    cache: &Cache,
    opts: &ExecOptions,
) -> Result<Vec<Outcome>> {
    let (deps, dependents) = wire(steps)?;
    let state = Mutex::new(State {
        waiting_on: deps.iter().map(Vec::len).collect(),
        ready: (0..steps.len()).filter(|&i| deps[i].is_empty()).collect(),
        done: vec![None; steps.len()],
        in_flight: 0,
        finished: 0,
        failures: Vec::new(),
        input_sets: HashMap::new(),
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
        return Err(failure_report(state.failures, opts.advice));
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
/// For each step, the indices of the steps it points at.
type Adjacency = Vec<Vec<usize>>;

fn wire(steps: &[Box<dyn Step>]) -> Result<(Adjacency, Adjacency)> {
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
    let mut st = state.lock().expect("lock");
    loop {
        // Take the next ready step, or sleep until one is ready or all is over.
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
        let inputs = input_set(&mut st, &deps[idx]);
        drop(st);
        let result = run_one(steps[idx].as_ref(), inputs, cache, opts);
        st = state.lock().expect("lock");
        st.in_flight -= 1;
        let before = st.ready.len();
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
            Err(err) => st.failures.push((steps[idx].id(), err)),
        }
        // Wake sleepers only when there is something for them: new work beyond
        // the step this worker takes next, or the end of the build. (Waking
        // every worker after every step costs more than a cached step does.)
        let over = !st.failures.is_empty() || st.finished == steps.len() || st.in_flight == 0;
        let added = st.ready.len() - before;
        if over {
            wake.notify_all();
        } else {
            for _ in 1..added {
                wake.notify_one();
            }
        }
    }
}

/// The inputs of a step that depends on `deps`. Built under the lock, but once
/// per distinct dependency list: a build has a handful, and every node's steps
/// share one.
fn input_set(st: &mut State, deps: &[usize]) -> Arc<InputSet> {
    if let Some(set) = st.input_sets.get(deps) {
        return set.clone();
    }
    let outputs = deps.iter().flat_map(|&d| {
        st.done[d]
            .as_ref()
            .expect("deps are done")
            .outputs
            .iter()
            .cloned()
    });
    let set = Arc::new(InputSet::new(outputs));
    st.input_sets.insert(deps.to_vec(), set.clone());
    set
}

fn run_one(
    step: &dyn Step,
    inputs: Arc<InputSet>,
    cache: &Cache,
    opts: &ExecOptions,
) -> Result<Outcome> {
    let id = step.id();
    let inputs = Inputs::shared(inputs, &cache.store);
    // What produced the outputs: the running binary's digest, so a rebuilt
    // pxebuild (same version number, changed code) re-renders everything.
    // Downloads are keyed by their URL and pins alone.
    let producer = step.keyed_by_binary().then(super::fingerprint::fingerprint);
    let wrap = |key: Value| match producer {
        Some(fingerprint) => json!({"step": id, "pxebuild": fingerprint, "key": key}),
        None => json!({"step": id, "key": key}),
    };
    let key = step.key(&inputs)?;
    let key_hash = Cache::key_hash(&wrap(key.hashed()?));
    let stored_inputs_intact = !opts.verify_cache || step.stored_inputs_intact()?;
    let miss = if stored_inputs_intact {
        match cache.lookup(&key_hash, opts.verify_cache) {
            Lookup::Hit(outputs) => {
                crate::debug!("{id}: cached");
                return Ok(Outcome {
                    id,
                    key_hash,
                    outputs,
                    ran: None,
                });
            }
            Lookup::Miss(miss) => miss,
        }
    } else {
        cache.claim(&key_hash)
    };
    // Recorded for a later `--explain`, compared now when asked.
    let key = wrap(key.explained()?);
    let reason = if !stored_inputs_intact {
        "a download it reads was corrupt or missing in the cache (--verify-cache)".to_string()
    } else if let Some(path) = cache.damaged_output(&key_hash) {
        format!(
            "its output {} was changed after it was published, and the cached copy with it",
            crate::layout::redact(path)
        )
    } else if opts.explain {
        explain::reason(cache.last_key(&id).as_ref(), &key)
    } else {
        "its key is new (--explain says what changed)".to_string()
    };
    crate::debug!("{id}: runs, {reason}");
    let mut ctx = RunCtx::new(&inputs, &cache.store);
    step.run(&mut ctx)?;
    let outputs = ctx.into_outputs();
    miss.record(Record {
        id: id.clone(),
        key,
        outputs: outputs.clone(),
    });
    Ok(Outcome {
        id,
        key_hash,
        outputs,
        ran: Some(reason),
    })
}

/// One error for every failed step. Steps that failed for one reason share
/// one line; a broken input many steps share (a template that does not
/// compile) is reported once, without the steps that happened to run into
/// it. The build is bad input (exit 2) when every failure was.
fn failure_report(failures: Vec<(String, anyhow::Error)>, advice: Option<Advice>) -> anyhow::Error {
    let shared_input = |err: &anyhow::Error| err.downcast_ref::<SharedInputError>().is_some();
    let bad_input = failures.iter().all(|(_, err)| {
        shared_input(err) || crate::error::exit_code(err) == crate::error::EXIT_BAD_INPUT
    });
    // E.g. hosts that could not be reached: the advice comes once, after all.
    let mut advised: Vec<&'static str> = Vec::new();
    for text in failures
        .iter()
        .filter_map(|(_, err)| advice.and_then(|advice| advice(err)))
    {
        if !advised.contains(&text) {
            advised.push(text);
        }
    }
    let mut shared: Vec<String> = Vec::new();
    let mut by_reason: Vec<(String, Vec<String>)> = Vec::new();
    for (id, err) in failures {
        let reason = format!("{err:#}");
        if shared_input(&err) {
            if !shared.contains(&reason) {
                shared.push(reason);
            }
            continue;
        }
        match by_reason.iter_mut().find(|(r, _)| *r == reason) {
            Some((_, ids)) => ids.push(id),
            None => by_reason.push((reason, vec![id])),
        }
    }
    let steps = by_reason
        .into_iter()
        .map(|(reason, ids)| match ids.as_slice() {
            [one] => format!("step {one} failed: {reason}"),
            [shown @ .., last] if ids.len() <= 3 => {
                format!("steps {} and {last} failed: {reason}", shown.join(", "))
            }
            _ => format!(
                "steps {} and {} more failed: {reason}",
                ids[..3].join(", "),
                ids.len() - 3
            ),
        });
    let mut lines: Vec<String> = shared.into_iter().chain(steps).collect();
    lines.extend(advised.into_iter().map(str::to_string));
    let text = lines.join("\n");
    if bad_input {
        crate::error::BadInput::new(text)
    } else {
        anyhow::anyhow!(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::key::Key;
    use crate::engine::step::Visibility;
    use anyhow::anyhow;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A step that concatenates its inputs with its own text.
    struct Concat {
        id: &'static str,
        deps: Vec<&'static str>,
        text: String,
        runs: Arc<AtomicUsize>,
        fail: bool,
    }

    impl Step for Concat {
        fn id(&self) -> String {
            self.id.to_string()
        }
        fn deps(&self) -> Vec<String> {
            self.deps.iter().map(|d| d.to_string()).collect()
        }
        fn key<'a>(&'a self, inputs: &'a Inputs<'_>) -> Result<Key<'a>> {
            #[derive(serde::Serialize)]
            struct ConcatKey<'a> {
                text: &'a str,
                inputs: std::collections::BTreeMap<String, String>,
            }
            Ok(Key::new(ConcatKey {
                text: &self.text,
                inputs: inputs.digests(),
            }))
        }
        fn run(&self, ctx: &mut RunCtx) -> Result<()> {
            self.runs.fetch_add(1, Ordering::SeqCst);
            if self.fail {
                return Err(anyhow!("{} broke", self.id));
            }
            let mut body = String::new();
            for dep in &self.deps {
                body.push_str(&ctx.inputs.read_string(&format!("http/{dep}"))?);
            }
            body.push_str(&self.text);
            ctx.put_bytes(
                &format!("http/{}", self.id),
                body.as_bytes(),
                Visibility::Public,
            )
        }
    }

    fn step(
        id: &'static str,
        deps: &[&'static str],
        text: &str,
        runs: &Arc<AtomicUsize>,
    ) -> Box<dyn Step> {
        Box::new(Concat {
            id,
            deps: deps.to_vec(),
            text: text.into(),
            runs: runs.clone(),
            fail: false,
        })
    }

    fn graph(c_text: &str, runs: &Arc<AtomicUsize>) -> Vec<Box<dyn Step>> {
        vec![
            step("c", &["a", "b"], c_text, runs),
            step("a", &[], "A", runs),
            step("b", &["a"], "B", runs),
        ]
    }

    fn opts() -> ExecOptions {
        ExecOptions {
            jobs: 4,
            verify_cache: false,
            explain: true,
            advice: None,
        }
    }

    #[test]
    fn runs_in_dependency_order_then_hits_the_cache() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(dir.path()).unwrap();
        let runs = Arc::new(AtomicUsize::new(0));
        let first = execute(&graph("C", &runs), &cache, &opts()).unwrap();
        assert_eq!(runs.load(Ordering::SeqCst), 3);
        let c = &first[0].outputs[0];
        assert_eq!(cache.store.read(&c.sha256).unwrap(), b"AABC");
        let second = execute(&graph("C", &runs), &cache, &opts()).unwrap();
        assert_eq!(runs.load(Ordering::SeqCst), 3, "nothing re-runs");
        assert!(second.iter().all(|o| o.ran.is_none()));
    }

    #[test]
    fn a_changed_key_reruns_only_that_step_and_explains_why() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(dir.path()).unwrap();
        let runs = Arc::new(AtomicUsize::new(0));
        execute(&graph("C", &runs), &cache, &opts()).unwrap();
        let again = execute(&graph("C2", &runs), &cache, &opts()).unwrap();
        assert_eq!(runs.load(Ordering::SeqCst), 4);
        assert_eq!(again[0].ran.as_deref(), Some("changed: .key.text"));
    }

    #[test]
    fn failure_stops_new_work_and_records_nothing_for_the_failed_step() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(dir.path()).unwrap();
        let runs = Arc::new(AtomicUsize::new(0));
        let steps: Vec<Box<dyn Step>> = vec![
            Box::new(Concat {
                id: "a",
                deps: vec![],
                text: "A".into(),
                runs: runs.clone(),
                fail: true,
            }),
            step("b", &["a"], "B", &runs),
        ];
        let err = execute(&steps, &cache, &opts()).unwrap_err().to_string();
        assert!(err.contains("step a failed: a broke"), "{err}");
        assert_eq!(runs.load(Ordering::SeqCst), 1, "b never started");
        assert!(cache.last_key("a").is_none(), "no record for a failed step");
    }

    #[test]
    fn failures_for_one_reason_share_a_line_and_keep_their_kind() {
        use crate::error::{exit_code, BadInput, EXIT_BAD_INPUT, EXIT_FAILED};
        let bad = |id: &str| (id.to_string(), BadInput::new("template t.hbs: unclosed"));
        let five = (1..=5).map(|i| bad(&format!("n{i}"))).collect();
        let err = failure_report(five, None);
        assert_eq!(
            err.to_string(),
            "steps n1, n2, n3 and 2 more failed: template t.hbs: unclosed"
        );
        assert_eq!(exit_code(&err), EXIT_BAD_INPUT);

        let mixed = vec![
            bad("a"),
            bad("b"),
            ("c".to_string(), anyhow::anyhow!("disk full")),
        ];
        let err = failure_report(mixed, None);
        assert_eq!(
            err.to_string(),
            "steps a and b failed: template t.hbs: unclosed\nstep c failed: disk full"
        );
        assert_eq!(exit_code(&err), EXIT_FAILED, "not all of it was bad input");
    }

    #[test]
    fn a_broken_shared_input_is_reported_once_without_step_ids() {
        use crate::error::{exit_code, BadInput, EXIT_BAD_INPUT, EXIT_FAILED};
        let broken = || {
            BadInput::new("templates/node.bu.hbs:9:1: `{{#each}}` is never closed")
                .context(SharedInputError("template error".into()))
        };
        let err = failure_report(
            vec![
                ("boot:cp1/configs".into(), broken()),
                ("boot:cp2/configs".into(), broken()),
                ("ignition:cp1/node.ign".into(), broken()),
            ],
            None,
        );
        assert_eq!(
            err.to_string(),
            "template error: templates/node.bu.hbs:9:1: `{{#each}}` is never closed"
        );
        assert_eq!(exit_code(&err), EXIT_BAD_INPUT);

        let with_other = failure_report(
            vec![
                ("a".into(), broken()),
                ("c".into(), anyhow::anyhow!("disk full")),
            ],
            None,
        );
        assert_eq!(
            with_other.to_string(),
            "template error: templates/node.bu.hbs:9:1: `{{#each}}` is never closed\n\
             step c failed: disk full"
        );
        assert_eq!(exit_code(&with_other), EXIT_FAILED);
    }

    #[test]
    fn the_callers_advice_comes_once_after_every_failure() {
        fn advice(err: &anyhow::Error) -> Option<&'static str> {
            format!("{err:#}")
                .contains("unreachable")
                .then_some("no network? try --offline")
        }
        let failures = vec![
            ("a".to_string(), anyhow!("host h1 unreachable")),
            ("b".to_string(), anyhow!("host h2 unreachable")),
            ("c".to_string(), anyhow!("disk full")),
        ];
        let err = failure_report(failures, Some(advice));
        assert_eq!(
            err.to_string(),
            "step a failed: host h1 unreachable\nstep b failed: host h2 unreachable\n\
             step c failed: disk full\nno network? try --offline"
        );
        let without = failure_report(vec![("c".to_string(), anyhow!("disk full"))], Some(advice));
        assert_eq!(without.to_string(), "step c failed: disk full");
    }

    #[test]
    fn cycles_and_unknown_dependencies_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(dir.path()).unwrap();
        let runs = Arc::new(AtomicUsize::new(0));
        let cyclic = vec![step("a", &["b"], "", &runs), step("b", &["a"], "", &runs)];
        let err = execute(&cyclic, &cache, &opts()).unwrap_err().to_string();
        assert!(err.contains("cycle"), "{err}");
        let dangling = vec![step("a", &["zz"], "", &runs)];
        let err = execute(&dangling, &cache, &opts()).unwrap_err().to_string();
        assert!(err.contains("unknown step zz"), "{err}");
    }

    #[test]
    fn independent_steps_run_in_parallel() {
        use std::sync::Barrier;
        struct Meet(&'static str, Arc<Barrier>);
        impl Step for Meet {
            fn id(&self) -> String {
                self.0.into()
            }
            fn key<'a>(&'a self, _: &'a Inputs<'_>) -> Result<Key<'a>> {
                Ok(Key::new(self.0))
            }
            fn run(&self, _: &mut RunCtx) -> Result<()> {
                // Both steps must be inside run at once, or this waits forever.
                self.1.wait();
                Ok(())
            }
        }
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(dir.path()).unwrap();
        let barrier = Arc::new(Barrier::new(2));
        let steps: Vec<Box<dyn Step>> = vec![
            Box::new(Meet("x", barrier.clone())),
            Box::new(Meet("y", barrier)),
        ];
        execute(
            &steps,
            &cache,
            &ExecOptions {
                jobs: 2,
                verify_cache: false,
                explain: false,
                advice: None,
            },
        )
        .unwrap();
    }
}
