//! The body phase of large responses on one event-driven thread instead of the
//! connection threads.
//!
//! With a blocking sendfile per connection thread, every ACK that frees socket
//! buffer space wakes that connection's thread: with 32 clients on two cores the
//! machine spends its time switching between 32 sleeping senders, and the
//! clients (which pay for the wake-ups on loopback) get less CPU. One thread
//! waiting on epoll for all large bodies is usually already running when space
//! frees up, sends to every ready socket in one turn, and never holds a socket
//! it cannot write. The connection thread sleeps on a channel meanwhile and
//! takes the connection back for keep-alive when the body is done.
//!
//! Small bodies (Ignition configs, boot configs) do not come here: one blocking
//! sendfile finishes them at once.
use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::net::TcpStream;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::mpsc::{self, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use rustix::event::epoll;
use rustix::event::{eventfd, EventfdFlags};

/// Bodies at least this large go through the pump.
pub const MIN_BODY: u64 = 256 * 1024;
/// Bytes one socket may take per turn, so one fast client cannot starve others.
const TURN_BUDGET: u64 = 4 << 20;
/// Epoll token of the wake-up eventfd.
const WAKE: u64 = u64::MAX;

/// What a finished body reports: bytes sent and how it ended.
pub type Sent = (u64, io::Result<()>);

/// Handle to the pump thread.
pub struct Pump {
    inbox: Arc<Inbox>,
}

struct Inbox {
    jobs: Mutex<Vec<Job>>,
    wake: OwnedFd,
}

struct Job {
    stream: TcpStream,
    file: File,
    start: u64,
    offset: u64,
    end: u64,
    last_progress: Instant,
    done: SyncSender<Sent>,
}

impl Pump {
    /// Starts the pump thread; a body that makes no progress for `idle` fails.
    pub fn start(idle: Duration) -> io::Result<Pump> {
        let wake = eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK)?;
        let inbox = Arc::new(Inbox {
            jobs: Mutex::new(Vec::new()),
            wake,
        });
        let epoll = epoll::create(epoll::CreateFlags::CLOEXEC)?;
        epoll::add(
            &epoll,
            &inbox.wake,
            epoll::EventData::new_u64(WAKE),
            epoll::EventFlags::IN,
        )?;
        let thread_inbox = inbox.clone();
        thread::Builder::new()
            .name("http-pump".into())
            .stack_size(256 * 1024)
            .spawn(move || run(&epoll, &thread_inbox, idle))?;
        Ok(Pump { inbox })
    }

    /// Sends `len` bytes of `file` from `offset` on `stream`, waiting until the
    /// body is done; returns the bytes sent and how it ended.
    pub fn send_file(&self, stream: &TcpStream, file: &File, offset: u64, len: u64) -> Sent {
        let handed = (|| -> io::Result<_> {
            let stream = stream.try_clone()?;
            stream.set_nonblocking(true)?;
            Ok((stream, file.try_clone()?))
        })();
        let (pumped, file) = match handed {
            Ok(pair) => pair,
            Err(err) => return (0, Err(err)),
        };
        let _ = rustix::net::sockopt::set_tcp_cork(&pumped, true);
        let (done, result) = mpsc::sync_channel(1);
        let job = Job {
            stream: pumped,
            file,
            start: offset,
            offset,
            end: offset + len,
            last_progress: Instant::now(),
            done,
        };
        self.inbox
            .jobs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(job);
        let _ = rustix::io::write(&self.inbox.wake, &1u64.to_ne_bytes());
        let sent = result.recv().unwrap_or_else(|_| {
            let err = io::Error::other("the HTTP pump thread stopped");
            (0, Err(err))
        });
        let _ = rustix::net::sockopt::set_tcp_cork(stream, false);
        // The flag lives on the shared open file: the connection reads blocking again.
        if let Err(err) = stream.set_nonblocking(false) {
            return (sent.0, Err(err));
        }
        sent
    }
}

fn run(epoll: &OwnedFd, inbox: &Inbox, idle: Duration) {
    let mut active: HashMap<u64, Job> = HashMap::new();
    let mut next_token = 0u64;
    let mut events = Vec::with_capacity(64);
    let mut ready = Vec::new();
    let mut last_sweep = Instant::now();
    let tick = rustix::event::Timespec {
        tv_sec: 1,
        tv_nsec: 0,
    };
    loop {
        events.clear();
        match epoll::wait(
            epoll,
            rustix::buffer::spare_capacity(&mut events),
            Some(&tick),
        ) {
            Ok(_) | Err(rustix::io::Errno::INTR) => {}
            Err(err) => {
                crate::warn!("http: pump: epoll_wait: {err}");
                thread::sleep(Duration::from_millis(100));
            }
        }
        ready.clear();
        for event in &events {
            match event.data.u64() {
                WAKE => admit(epoll, inbox, &mut active, &mut next_token, &mut ready),
                token => ready.push(token),
            }
        }
        for token in &ready {
            let Some(job) = active.get_mut(token) else {
                continue;
            };
            if let Some(outcome) = pump(job) {
                finish(epoll, active.remove(token), outcome);
            }
        }
        if last_sweep.elapsed() >= Duration::from_secs(1) {
            last_sweep = Instant::now();
            let stalled: Vec<u64> = active
                .iter()
                .filter(|(_, job)| job.last_progress.elapsed() >= idle)
                .map(|(token, _)| *token)
                .collect();
            for token in stalled {
                let err = io::Error::new(io::ErrorKind::TimedOut, "client stopped reading");
                finish(epoll, active.remove(&token), Err(err));
            }
        }
    }
}

/// Takes queued jobs into the epoll set; each is tried at once.
fn admit(
    epoll: &OwnedFd,
    inbox: &Inbox,
    active: &mut HashMap<u64, Job>,
    next_token: &mut u64,
    ready: &mut Vec<u64>,
) {
    let mut counter = [0u8; 8];
    let _ = rustix::io::read(&inbox.wake, &mut counter);
    let jobs = std::mem::take(&mut *inbox.jobs.lock().unwrap_or_else(|e| e.into_inner()));
    for job in jobs {
        let token = *next_token;
        *next_token += 1;
        // Level-triggered: a socket left writable after its turn is reported again.
        let added = epoll::add(
            epoll,
            job.stream.as_fd(),
            epoll::EventData::new_u64(token),
            epoll::EventFlags::OUT,
        );
        if let Err(err) = added {
            let _ = job.done.send((0, Err(err.into())));
            continue;
        }
        active.insert(token, job);
        ready.push(token);
    }
}

/// Sends one turn's worth; `Some` when the body is finished (or failed).
fn pump(job: &mut Job) -> Option<io::Result<()>> {
    let budget_end = (job.offset + TURN_BUDGET).min(job.end);
    while job.offset < budget_end {
        let chunk = (budget_end - job.offset) as usize;
        match rustix::fs::sendfile(&job.stream, &job.file, Some(&mut job.offset), chunk) {
            Ok(0) => {
                let err = io::Error::new(io::ErrorKind::UnexpectedEof, "file shrank while sending");
                return Some(Err(err));
            }
            Ok(_) => job.last_progress = Instant::now(),
            Err(rustix::io::Errno::INTR) => {}
            Err(rustix::io::Errno::AGAIN) => return None,
            Err(err) => return Some(Err(err.into())),
        }
    }
    (job.offset >= job.end).then_some(Ok(()))
}

fn finish(epoll: &OwnedFd, job: Option<Job>, outcome: io::Result<()>) {
    let Some(job) = job else { return };
    let _ = epoll::delete(epoll, job.stream.as_fd());
    let _ = job.done.send((job.offset - job.start, outcome));
}
