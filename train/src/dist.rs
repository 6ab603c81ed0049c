//! Data-parallel ranks on PyTorch's distributed engine (c10d): rendezvous
//! through its `TCPStore`, collectives through `ProcessGroupGloo` (CPU and
//! CUDA tensors), called through the C++ shim in `csrc/dist.cpp`. One process
//! is a group of one whose collectives do nothing.
//!
//! Ranks hold the global batch in interleaved shards: rank r takes the batch
//! positions r, r + W, r + 2W, ... (DistributedSampler's order), so that a
//! rank's share is exactly one set of the single-device BN groups
//! (`BnMode::Train`: position n is in group n % splits).

use std::ffi::{c_char, c_int, CStr, CString};
use std::time::Duration;
use tch::{Kind, Tensor};

#[repr(C)]
struct RawGroup {
    _private: [u8; 0],
}

type C = torch_sys::C_tensor;

extern "C" {
    fn mixco_dist_free_message(m: *mut c_char);
    fn mixco_dist_new(host: *const c_char, port: c_int, rank: c_int, world: c_int, timeout_ms: c_int, client_only: c_int, prefix: *const c_char, out: *mut *mut RawGroup) -> *mut c_char;
    fn mixco_dist_drop(d: *mut RawGroup);
    fn mixco_dist_serve_store(port: c_int, timeout_ms: c_int, out: *mut *mut std::ffi::c_void) -> *mut c_char;
    fn mixco_dist_drop_store(s: *mut std::ffi::c_void);
    fn mixco_dist_all_reduce(d: *mut RawGroup, t: *const C, op: c_int) -> *mut c_char;
    fn mixco_dist_all_gather(d: *mut RawGroup, t: *const C, out: *mut *mut C) -> *mut c_char;
    fn mixco_dist_broadcast(d: *mut RawGroup, t: *const C, root: c_int) -> *mut c_char;
    fn mixco_dist_barrier(d: *mut RawGroup, timeout_ms: c_int) -> *mut c_char;
}

#[derive(Debug, thiserror::Error)]
pub enum DistError {
    /// A launcher variable that does not parse or does not fit the others.
    #[error("environment variable {var}={value:?}: {problem}")]
    Env { var: &'static str, value: String, problem: String },
    #[error("rank {rank} of {world}: cannot join the group at {addr} within {timeout_s} s: {message}")]
    Join { rank: usize, world: usize, addr: String, timeout_s: u64, message: String },
    /// A collective failed: another rank died, was stopped, or hung past the timeout.
    #[error("rank {rank} of {world}: {op} across the ranks failed (another rank died, was stopped, or did not answer within {timeout_s} s): {message}")]
    Collective { rank: usize, world: usize, op: &'static str, timeout_s: u64, message: String },
}

/// Where this process is in a launch: torchrun's (and `mixco train
/// --nproc-per-node`'s) `RANK`, `WORLD_SIZE`, `LOCAL_RANK`, `MASTER_ADDR`,
/// `MASTER_PORT`, else a SLURM job step's `SLURM_PROCID`, `SLURM_NTASKS`,
/// `SLURM_LOCALID` with `MASTER_ADDR`/`MASTER_PORT` set by the job script.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Launch {
    pub rank: usize,
    pub world: usize,
    pub local_rank: usize,
    pub addr: String,
    pub port: u16,
    /// torchrun's agent serves the store (`TORCHELASTIC_USE_AGENT_STORE`): rank 0 only connects.
    pub agent_store: bool,
    /// torchrun's restart count (`TORCHELASTIC_RESTART_COUNT`): each attempt
    /// rendezvouses under its own keys of a store that outlives it.
    pub attempt: u32,
}

impl Launch {
    /// The launch described by `var` (the environment), or None for a single process.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Option<Launch>, DistError> {
        let (rank_v, world_v, local_v) = if var("WORLD_SIZE").is_some() {
            ("RANK", "WORLD_SIZE", "LOCAL_RANK")
        } else if var("SLURM_NTASKS").is_some() && var("SLURM_PROCID").is_some() {
            ("SLURM_PROCID", "SLURM_NTASKS", "SLURM_LOCALID")
        } else {
            return Ok(None);
        };
        let num = |name: &'static str, default: Option<usize>| -> Result<usize, DistError> {
            match var(name) {
                Some(v) => v.trim().parse().map_err(|_| DistError::Env { var: name, value: v, problem: "not a whole number".into() }),
                None => default.ok_or(DistError::Env { var: name, value: String::new(), problem: format!("missing (set with {world_v})") }),
            }
        };
        let world = num(world_v, None)?;
        if world == 0 {
            return Err(DistError::Env { var: world_v, value: "0".into(), problem: "must be at least 1".into() });
        }
        if world == 1 && rank_v == "SLURM_PROCID" {
            return Ok(None);
        }
        let rank = num(rank_v, None)?;
        if rank >= world {
            return Err(DistError::Env { var: rank_v, value: rank.to_string(), problem: format!("must be below {world_v}={world}") });
        }
        let local_rank = num(local_v, Some(0))?;
        let addr = match var("MASTER_ADDR") {
            Some(a) if !a.trim().is_empty() => a.trim().to_string(),
            _ if world == 1 => "127.0.0.1".into(),
            _ => return Err(DistError::Env { var: "MASTER_ADDR", value: String::new(), problem: "missing: the host of rank 0 (torchrun sets it; in a SLURM script export it)".into() }),
        };
        let port = num("MASTER_PORT", Some(29500))?;
        let port = u16::try_from(port).ok().filter(|&p| p > 0).ok_or(DistError::Env { var: "MASTER_PORT", value: port.to_string(), problem: "not a TCP port".into() })?;
        let agent_store = var("TORCHELASTIC_USE_AGENT_STORE").is_some_and(|v| v.eq_ignore_ascii_case("true") || v == "1");
        let attempt = num("TORCHELASTIC_RESTART_COUNT", Some(0))? as u32;
        Ok(Some(Launch { rank, world, local_rank, addr, port, agent_store, attempt }))
    }

    pub fn from_env() -> Result<Option<Launch>, DistError> {
        Launch::from_vars(|k| std::env::var(k).ok())
    }
}

/// What listens at `addr` when the handshake did not finish: a few bytes of
/// what it says, for the error.
fn what_answers(addr: &str) -> String {
    use std::io::{Read, Write};
    use std::net::ToSocketAddrs;
    let probe = || -> std::io::Result<Vec<u8>> {
        let to = addr.to_socket_addrs()?.next().ok_or(std::io::ErrorKind::NotFound)?;
        let mut s = std::net::TcpStream::connect_timeout(&to, Duration::from_secs(2))?;
        s.set_read_timeout(Some(Duration::from_secs(2)))?;
        let _ = s.write_all(b"\r\n\r\n");
        let mut buf = [0u8; 48];
        let n = s.read(&mut buf).unwrap_or(0);
        Ok(buf[..n].to_vec())
    };
    match probe() {
        Ok(b) if b.is_empty() => format!("something accepts connections on {addr} but did not answer as a c10d store (it sent nothing); is MASTER_PORT another program's?"),
        Ok(b) => format!("something accepts connections on {addr} but did not answer as a c10d store (it sent `{}`); is MASTER_PORT another program's?", String::from_utf8_lossy(&b).escape_debug()),
        Err(e) => format!("nothing answers on {addr} ({e})"),
    }
}

struct Group(*mut RawGroup);

// SAFETY: the process group is used from one thread at a time (the trainer's).
unsafe impl Send for Group {}

impl Drop for Group {
    fn drop(&mut self) {
        // SAFETY: created by mixco_dist_new, dropped once.
        unsafe { mixco_dist_drop(self.0) }
    }
}

/// This process's place among the ranks and the collectives between them.
pub struct Dist {
    pub rank: usize,
    pub world: usize,
    pub timeout: Duration,
    group: Option<Group>,
    /// Time spent in collectives so far (for `mixco bench train`).
    spent: std::cell::Cell<Duration>,
    /// A collective failed: the group is not torn down (see `Drop`).
    broken: std::cell::Cell<bool>,
}

impl Drop for Dist {
    /// A group whose peer died or hung is left to the process's exit: its
    /// destructor joins Gloo's threads and closes pairs to peers that may
    /// never answer, and a C++ exception there would abort the process
    /// before its error is printed.
    fn drop(&mut self) {
        if self.broken.get() {
            std::mem::forget(self.group.take());
        }
    }
}

/// Takes a message the shim allocated.
fn check(m: *mut c_char) -> Result<(), String> {
    if m.is_null() {
        return Ok(());
    }
    // SAFETY: a NUL-terminated string from strdup, freed once here.
    let s = unsafe { CStr::from_ptr(m) }.to_string_lossy().into_owned();
    unsafe { mixco_dist_free_message(m) };
    Err(s.lines().next().unwrap_or("").trim().to_string())
}

impl Dist {
    /// A group of one.
    pub fn single() -> Dist {
        Dist { rank: 0, world: 1, timeout: Duration::from_secs(600), group: None, spent: Default::default(), broken: Default::default() }
    }

    /// Joins the launch's group (every rank must call it), waiting up to `timeout`
    /// for the others; later collectives fail after `timeout` too.
    pub fn join(launch: &Launch, timeout: Duration) -> Result<Dist, DistError> {
        if launch.world == 1 {
            let mut d = Dist::single();
            d.timeout = timeout;
            return Ok(d);
        }
        Dist::connect(launch, timeout)
    }

    /// Whether c10d's Gloo backend works here (`mixco doctor`): a group of
    /// one on 127.0.0.1 all-reduces a tensor.
    pub fn check_gloo() -> Result<(), String> {
        let port = free_port().map_err(|e| format!("no free port on 127.0.0.1: {e}"))?;
        let launch = Launch { rank: 0, world: 1, local_rank: 0, addr: "127.0.0.1".into(), port, agent_store: false, attempt: 0 };
        let d = Dist::connect(&launch, Duration::from_secs(10)).map_err(|e| e.to_string())?;
        let t = Tensor::from_slice(&[2f32]);
        d.all_reduce_sum(&t).map_err(|e| e.to_string())?;
        match f32::try_from(t) {
            Ok(v) if v == 2.0 => Ok(()),
            other => Err(format!("an all-reduce of 2 on one rank gave {other:?}")),
        }
    }

    fn connect(launch: &Launch, timeout: Duration) -> Result<Dist, DistError> {
        let addr = format!("{}:{}", launch.addr, launch.port);
        let join_err = |message: String| DistError::Join { rank: launch.rank, world: launch.world, addr: addr.clone(), timeout_s: timeout.as_secs(), message };
        let host = CString::new(launch.addr.clone()).map_err(|_| join_err("the address holds a NUL byte".into()))?;
        let prefix = CString::new(format!("mixco/attempt_{}/", launch.attempt)).unwrap();
        let ms = timeout.as_millis().min(i32::MAX as u128) as c_int;
        let (port, rank, world, agent) = (launch.port as c_int, launch.rank as c_int, launch.world as c_int, launch.agent_store as c_int);
        // On a helper thread: c10d's handshake with a program that accepts the
        // connection but is no c10d store waits forever (it once did for 240 s
        // with a 10 s timeout). A thread stuck there is left behind; the rank
        // fails with an error naming the port.
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut raw = std::ptr::null_mut();
            // SAFETY: valid C strings and an out pointer the shim fills on success.
            let m = unsafe { mixco_dist_new(host.as_ptr(), port, rank, world, ms, agent, prefix.as_ptr(), &mut raw) };
            let _ = tx.send(check(m).map(|()| Group(raw)));
        });
        let group = match rx.recv_timeout(timeout + Duration::from_secs(5)) {
            Ok(joined) => joined.map_err(|m| join_err(format!("{m}; {}", what_answers(&addr))))?,
            Err(_) => return Err(join_err(what_answers(&addr))),
        };
        Ok(Dist { rank: launch.rank, world: launch.world, timeout, group: Some(group), spent: Default::default(), broken: Default::default() })
    }

    pub fn is_single(&self) -> bool {
        self.group.is_none()
    }

    /// Time spent in collectives so far, waiting for the other ranks included.
    pub fn collective_time(&self) -> Duration {
        self.spent.get()
    }

    /// Runs one collective, adding its time to `spent`.
    fn timed<T>(&self, f: impl FnOnce() -> T) -> T {
        let t0 = std::time::Instant::now();
        let out = f();
        self.spent.set(self.spent.get() + t0.elapsed());
        out
    }

    fn fail(&self, op: &'static str) -> impl Fn(String) -> DistError + '_ {
        move |message| {
            self.broken.set(true);
            DistError::Collective { rank: self.rank, world: self.world, op, timeout_s: self.timeout.as_secs(), message }
        }
    }

    /// Sums `t` across the ranks, in place.
    pub fn all_reduce_sum(&self, t: &Tensor) -> Result<(), DistError> {
        self.all_reduce(t, 0, "all-reduce")
    }

    /// The largest of each element across the ranks, in place.
    pub fn all_reduce_max(&self, t: &Tensor) -> Result<(), DistError> {
        self.all_reduce(t, 1, "all-reduce (max)")
    }

    fn all_reduce(&self, t: &Tensor, op: c_int, name: &'static str) -> Result<(), DistError> {
        let Some(g) = &self.group else { return Ok(()) };
        // SAFETY: a live contiguous tensor; the shim writes into its storage.
        self.timed(|| in_place(t, |c| check(unsafe { mixco_dist_all_reduce(g.0, c.as_ptr(), op) }))).map_err(self.fail(name))
    }

    /// Every rank's `t` (same shapes), concatenated along dim 0 in rank order; no gradient.
    pub fn all_gather(&self, t: &Tensor) -> Result<Tensor, DistError> {
        let Some(g) = &self.group else { return Ok(t.shallow_clone()) };
        let mut out = std::ptr::null_mut();
        // SAFETY: a live tensor; on success `out` is a new tensor we own.
        self.timed(|| check(unsafe { mixco_dist_all_gather(g.0, t.as_ptr(), &mut out) })).map_err(self.fail("all-gather"))?;
        Ok(unsafe { Tensor::from_ptr(out) })
    }

    /// Rank `root`'s `t` on every rank, in place.
    pub fn broadcast(&self, t: &Tensor, root: usize) -> Result<(), DistError> {
        let Some(g) = &self.group else { return Ok(()) };
        // SAFETY: as all_reduce.
        self.timed(|| in_place(t, |c| check(unsafe { mixco_dist_broadcast(g.0, c.as_ptr(), root as c_int) }))).map_err(self.fail("broadcast"))
    }

    /// Waits for every rank, up to `timeout` (longer than the collectives' own
    /// where rank 0 works alone meanwhile: the monitor, a checkpoint).
    pub fn barrier(&self, timeout: Duration) -> Result<(), DistError> {
        let Some(g) = &self.group else { return Ok(()) };
        let ms = timeout.as_millis().min(i32::MAX as u128) as c_int;
        // SAFETY: a live group.
        self.timed(|| check(unsafe { mixco_dist_barrier(g.0, ms) })).map_err(self.fail("barrier"))
    }

    /// This rank's positions in a global batch of `n`: rank, rank + W, ...
    pub fn positions(&self, n: usize) -> Vec<i64> {
        (self.rank..n).step_by(self.world).map(|p| p as i64).collect()
    }

    /// An all-gather in batch-position order: every rank's shard of a global
    /// batch (its `positions`), as the whole batch.
    pub fn gather_batch(&self, t: &Tensor) -> Result<Tensor, DistError> {
        if self.is_single() {
            return Ok(t.shallow_clone());
        }
        let blocks = self.all_gather(t)?;
        Ok(interleave(&blocks, self.world as i64))
    }

    /// Gathers `z` as a leaf that takes gradients: the losses are computed on
    /// it, and [`Gathered::backward`] sums each rank's gradient for its rows
    /// across the ranks and runs it through `z`'s graph (an all-gather whose
    /// backward is a reduce-scatter). None for a single process.
    pub fn gather_with_grad(&self, z: &Tensor) -> Result<Option<Gathered>, DistError> {
        if self.is_single() {
            return Ok(None);
        }
        let leaf = self.all_gather(&z.detach())?.set_requires_grad(true);
        Ok(Some(Gathered { leaf, local: z.shallow_clone() }))
    }

    /// Averages tensors across the ranks, in place, in buckets of at most
    /// `BUCKET` float32 values (one all-reduce per bucket).
    pub fn average(&self, tensors: &[Tensor]) -> Result<(), DistError> {
        if self.is_single() {
            return Ok(());
        }
        const BUCKET: i64 = 1 << 22;
        let mut start = 0;
        while start < tensors.len() {
            let mut end = start;
            let mut size = 0;
            while end < tensors.len() && (end == start || size + tensors[end].numel() as i64 <= BUCKET) {
                size += tensors[end].numel() as i64;
                end += 1;
            }
            self.average_bucket(&tensors[start..end])?;
            start = end;
        }
        Ok(())
    }

    fn average_bucket(&self, ts: &[Tensor]) -> Result<(), DistError> {
        let flat = tch::no_grad(|| Tensor::cat(&ts.iter().map(|t| t.to_kind(Kind::Float).reshape([-1])).collect::<Vec<_>>(), 0));
        self.all_reduce_sum(&flat)?;
        tch::no_grad(|| {
            let flat = flat / self.world as f64;
            let mut at = 0;
            for t in ts {
                let n = t.numel() as i64;
                t.shallow_clone().copy_(&flat.narrow(0, at, n).view(t.size().as_slice()));
                at += n;
            }
        });
        Ok(())
    }
}

/// Runs an in-place collective on `t`, through a contiguous copy where it is
/// not contiguous (channels-last weights).
fn in_place(t: &Tensor, op: impl FnOnce(&Tensor) -> Result<(), String>) -> Result<(), String> {
    if t.is_contiguous() {
        return op(t);
    }
    let c = t.contiguous();
    op(&c)?;
    tch::no_grad(|| t.shallow_clone().copy_(&c));
    Ok(())
}

/// A TCP port on 127.0.0.1 that was free a moment ago (the rendezvous port
/// of ranks started on this machine).
pub fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// A c10d store server on 127.0.0.1 that no rank owns, as torchrun's agent
/// serves one (`TORCHELASTIC_USE_AGENT_STORE`); for tests of that mode.
pub struct StoreServer(*mut std::ffi::c_void);

impl StoreServer {
    pub fn start(port: u16) -> Result<StoreServer, String> {
        let mut raw = std::ptr::null_mut();
        // SAFETY: an out pointer the shim fills on success.
        check(unsafe { mixco_dist_serve_store(port as c_int, 30_000, &mut raw) })?;
        Ok(StoreServer(raw))
    }
}

impl Drop for StoreServer {
    fn drop(&mut self) {
        // SAFETY: created by mixco_dist_serve_store, dropped once.
        unsafe { mixco_dist_drop_store(self.0) }
    }
}

/// Rank-ordered blocks `[W·B, ...]` (rank r's B rows are positions r, r + W,
/// ...) as the rows in position order.
pub fn interleave(blocks: &Tensor, world: i64) -> Tensor {
    let mut shape = blocks.size();
    let b = shape[0] / world;
    let mut split = vec![world, b];
    split.extend_from_slice(&shape[1..]);
    shape[0] = world * b;
    blocks.reshape(split.as_slice()).transpose(0, 1).reshape(shape.as_slice())
}

/// A rank's tensor gathered from all ranks as a leaf (see `Dist::gather_with_grad`).
pub struct Gathered {
    /// `[W·R, ...]`: every rank's R rows, in rank order.
    pub leaf: Tensor,
    local: Tensor,
}

impl Gathered {
    /// Backpropagates `loss` (computed on `leaf` only) into this rank's graph:
    /// the gradient for its rows is the sum over the ranks' losses.
    pub fn backward(&self, loss: &Tensor, dist: &Dist) -> Result<(), DistError> {
        let grad = Tensor::run_backward(&[loss], &[&self.leaf], false, false).remove(0).contiguous();
        dist.all_reduce_sum(&grad)?;
        let rows = self.local.size()[0];
        let mine = grad.narrow(0, dist.rank as i64 * rows, rows);
        (&self.local * mine).sum(Kind::Float).backward();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: std::collections::HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |k| m.get(k).cloned()
    }

    #[test]
    fn launches_from_torchrun_and_slurm_variables() {
        assert_eq!(Launch::from_vars(vars(&[])).unwrap(), None);
        let l = Launch::from_vars(vars(&[("RANK", "1"), ("WORLD_SIZE", "2"), ("LOCAL_RANK", "1"), ("MASTER_ADDR", "node0"), ("MASTER_PORT", "1234"), ("TORCHELASTIC_USE_AGENT_STORE", "True"), ("TORCHELASTIC_RESTART_COUNT", "2")])).unwrap().unwrap();
        assert_eq!(l, Launch { rank: 1, world: 2, local_rank: 1, addr: "node0".into(), port: 1234, agent_store: true, attempt: 2 });
        let l = Launch::from_vars(vars(&[("SLURM_PROCID", "3"), ("SLURM_NTASKS", "4"), ("SLURM_LOCALID", "1"), ("MASTER_ADDR", "n1")])).unwrap().unwrap();
        assert_eq!((l.rank, l.world, l.local_rank, l.port), (3, 4, 1, 29500));
        assert_eq!(Launch::from_vars(vars(&[("SLURM_PROCID", "0"), ("SLURM_NTASKS", "1")])).unwrap(), None);
        let e = Launch::from_vars(vars(&[("RANK", "2"), ("WORLD_SIZE", "2"), ("MASTER_ADDR", "h")])).unwrap_err().to_string();
        assert!(e.contains("RANK=\"2\"") && e.contains("below WORLD_SIZE=2"), "{e}");
        let e = Launch::from_vars(vars(&[("RANK", "0"), ("WORLD_SIZE", "2")])).unwrap_err().to_string();
        assert!(e.contains("MASTER_ADDR"), "{e}");
        let e = Launch::from_vars(vars(&[("RANK", "x"), ("WORLD_SIZE", "2")])).unwrap_err().to_string();
        assert!(e.contains("not a whole number"), "{e}");
    }

    #[test]
    fn interleave_puts_rank_blocks_in_position_order() {
        // Rank 0 holds positions 0, 2, 4; rank 1 holds 1, 3, 5.
        let blocks = Tensor::from_slice(&[0i64, 2, 4, 1, 3, 5]);
        assert_eq!(Vec::<i64>::try_from(interleave(&blocks, 2)).unwrap(), vec![0, 1, 2, 3, 4, 5]);
        let d = Dist { rank: 1, world: 2, timeout: Duration::from_secs(1), group: None, spent: Default::default(), broken: Default::default() };
        assert_eq!(d.positions(6), vec![1, 3, 5]);
    }

    /// Two ranks as two threads on 127.0.0.1: sums, gathers, broadcasts;
    /// rank 0 serving the store, then both connecting to an agent's store (torchrun's mode).
    #[test]
    fn two_ranks_reduce_gather_and_broadcast() {
        two_ranks(false);
        two_ranks(true);
    }

    fn two_ranks(agent_store: bool) {
        let port = free_port();
        let _agent = agent_store.then(|| StoreServer::start(port).unwrap());
        let ranks: Vec<_> = (0..2)
            .map(|rank| {
                std::thread::spawn(move || {
                    let launch = Launch { rank, world: 2, local_rank: rank, addr: "127.0.0.1".into(), port, agent_store, attempt: 1 };
                    let d = Dist::join(&launch, Duration::from_secs(30)).unwrap();
                    let t = Tensor::from_slice(&[rank as f32 + 1.0, 10.0]);
                    d.all_reduce_sum(&t).unwrap();
                    let g = d.all_gather(&Tensor::from_slice(&[rank as i64])).unwrap();
                    let b = Tensor::from_slice(&[rank as f32 * 7.0]);
                    d.broadcast(&b, 1).unwrap();
                    d.barrier(Duration::from_secs(10)).unwrap();
                    (Vec::<f32>::try_from(t).unwrap(), Vec::<i64>::try_from(g).unwrap(), Vec::<f32>::try_from(b).unwrap())
                })
            })
            .collect();
        for r in ranks {
            assert_eq!(r.join().unwrap(), (vec![3.0, 20.0], vec![0, 1], vec![7.0]));
        }
    }

    /// The one whose partner never arrives fails within the timeout, naming itself.
    #[test]
    fn a_missing_rank_is_an_error_within_the_timeout() {
        let launch = Launch { rank: 0, world: 2, local_rank: 0, addr: "127.0.0.1".into(), port: free_port(), agent_store: false, attempt: 0 };
        let t0 = std::time::Instant::now();
        let e = Dist::join(&launch, Duration::from_secs(2)).err().expect("no partner").to_string();
        assert!(e.starts_with("rank 0 of 2: cannot join the group"), "{e}");
        assert!(t0.elapsed() < Duration::from_secs(30));
    }

    fn free_port() -> u16 {
        super::free_port().unwrap()
    }
}
