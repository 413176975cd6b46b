//! Data parallelism across processes: MPI (cargo feature `mpi`, rsmpi over the system's MPI).
//!
//! `mpirun -np N strata train ...` (or `srun`, or a hostfile across machines) starts N ranks of
//! the same command. Each rank trains the same model on its share of every global batch; the
//! engine averages the gradients (weighted by each rank's share of the loss) with one
//! all-reduce per parameter group, so the N ranks take the step one process would take on the
//! whole batch; after each round [`sync_module`] makes the ranks' models equal (BatchNorm
//! statistics averaged). Rank 0 alone writes files and progress. Without the feature, or when no
//! launcher started the process, the world is one rank and every operation here is a no-op.

use std::sync::OnceLock;

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param, ParamId};
use burn::optim::GradientsParams;
use burn::tensor::{Tensor, TensorData};

/// The processes training together.
pub struct World {
    rank: usize,
    size: usize,
    launcher: Option<String>,
    #[cfg(feature = "mpi")]
    comm: Option<mpi_impl::Comm>,
}

static WORLD: OnceLock<World> = OnceLock::new();

/// Finalises MPI when dropped (keep it until the program ends; see [`init`]).
pub struct Guard {
    _private: (),
}

impl Drop for Guard {
    fn drop(&mut self) {
        #[cfg(feature = "mpi")]
        mpi_impl::finalize();
    }
}

/// The launcher that started this process, if any: OpenMPI's `mpirun`, a PMI/PMIx launcher
/// (MPICH's `mpiexec`, Slurm's `srun`).
pub fn launcher() -> Option<String> {
    let var = |k: &str| std::env::var(k).ok();
    if let Some(n) = var("OMPI_COMM_WORLD_SIZE") {
        return Some(format!("mpirun (Open MPI, {n} ranks)"));
    }
    if var("SLURM_PROCID").is_some() && (var("PMI_SIZE").is_some() || var("PMIX_RANK").is_some()) {
        return Some("srun (Slurm)".into());
    }
    if let Some(n) = var("PMI_SIZE") {
        return Some(format!("PMI ({n} ranks)"));
    }
    var("PMIX_RANK").map(|_| "PMIx".into())
}

/// Join the world this process was launched into. With the `mpi` feature and a launcher, MPI
/// starts here and each rank's compute threads default to the cores per rank on its machine
/// (`RAYON_NUM_THREADS` set by the user wins). Call once, first thing in `main`.
pub fn init() -> Guard {
    let launched = launcher();
    #[cfg(feature = "mpi")]
    if launched.is_some() {
        let (comm, rank, size) = mpi_impl::start();
        if size > 1 && std::env::var_os("RAYON_NUM_THREADS").is_none() {
            let local = ["OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS", "SLURM_NTASKS_PER_NODE"]
                .iter()
                .find_map(|k| std::env::var(k).ok()?.parse::<usize>().ok())
                .unwrap_or(size);
            let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
            // SAFETY: called first thing in main, before any thread exists.
            unsafe { std::env::set_var("RAYON_NUM_THREADS", (cores / local.max(1)).max(1).to_string()) };
        }
        let _ = WORLD.set(World { rank, size, launcher: launched, comm: Some(comm) });
        return Guard { _private: () };
    }
    #[cfg(not(feature = "mpi"))]
    if let Some(l) = &launched {
        let n: usize = std::env::var("OMPI_COMM_WORLD_SIZE").or_else(|_| std::env::var("PMI_SIZE")).ok().and_then(|v| v.parse().ok()).unwrap_or(1);
        if n > 1 {
            eprintln!("error: started by {l}, but this strata was built without MPI: build with `--features mpi` (docs/distributed.md)");
            std::process::exit(2);
        }
    }
    let _ = WORLD.set(World::single());
    Guard { _private: () }
}

/// The world of this process ([`init`]'s, or a single rank).
pub fn world() -> &'static World {
    WORLD.get_or_init(World::single)
}

impl World {
    fn single() -> World {
        World {
            rank: 0,
            size: 1,
            launcher: None,
            #[cfg(feature = "mpi")]
            comm: None,
        }
    }

    pub fn rank(&self) -> usize {
        self.rank
    }
    pub fn size(&self) -> usize {
        self.size
    }
    /// Rank 0 writes files and prints.
    pub fn is_root(&self) -> bool {
        self.rank == 0
    }
    pub fn launcher(&self) -> Option<&str> {
        self.launcher.as_deref()
    }

    /// Element-wise sum over the ranks, in place.
    pub fn sum_f32(&self, buf: &mut [f32]) {
        #[cfg(feature = "mpi")]
        if let Some(c) = &self.comm {
            c.sum_f32(buf);
        }
        let _ = buf;
    }

    /// Element-wise sum over the ranks, in place.
    pub fn sum_f64(&self, buf: &mut [f64]) {
        #[cfg(feature = "mpi")]
        if let Some(c) = &self.comm {
            c.sum_f64(buf);
        }
        let _ = buf;
    }

    /// Rank 0's values on every rank.
    pub fn broadcast_f32(&self, buf: &mut [f32]) {
        #[cfg(feature = "mpi")]
        if let Some(c) = &self.comm {
            c.broadcast_f32(buf);
        }
        let _ = buf;
    }

    /// Rank 0's value on every rank.
    pub fn broadcast_f64(&self, v: f64) -> f64 {
        #[allow(unused_mut)]
        let mut b = [v];
        #[cfg(feature = "mpi")]
        if let Some(c) = &self.comm {
            c.broadcast_f64(&mut b);
        }
        b[0]
    }

    /// Wait until every rank is here.
    pub fn barrier(&self) {
        #[cfg(feature = "mpi")]
        if let Some(c) = &self.comm {
            c.barrier();
        }
    }

    /// End every rank now (after an error on this one: the others may be waiting in a
    /// collective and would never return).
    pub fn abort(&self, code: i32) -> ! {
        #[cfg(feature = "mpi")]
        if let Some(c) = &self.comm {
            c.abort(code);
        }
        std::process::exit(code)
    }

    /// This rank's share of a global batch: every `size`-th window from `rank` (the global
    /// batch is the one a single process would take).
    pub fn shard(&self, batch: &[usize]) -> Vec<usize> {
        batch.iter().copied().skip(self.rank).step_by(self.size).collect()
    }
}

/// Every float parameter's values, flattened in visit order, and for each value whether its
/// parameter trains.
fn flatten<M: Module>(module: &M) -> (Vec<f32>, Vec<bool>) {
    struct Read(Vec<f32>, Vec<bool>);
    impl ModuleVisitor for Read {
        fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<D>>) {
            let v = p.val().into_data().convert::<f32>().try_into_vec::<f32>().expect("f32 parameters");
            self.1.extend(std::iter::repeat_n(p.is_require_grad(), v.len()));
            self.0.extend(v);
        }
    }
    let mut r = Read(vec![], vec![]);
    module.visit(&mut r);
    (r.0, r.1)
}

/// `module` made the same on every rank with one all-reduce: rank 0's trainable parameters
/// (the ranks took the same steps; this ends any drift of float rounding), the mean of the
/// other float state over the ranks (BatchNorm's running statistics, which each rank gathered
/// on its own windows; frozen weights are equal everywhere). Reading the parameters
/// initialises lazily initialised ones, so the engine calls this after a round's steps (before
/// validation and the checkpoint), not right after the model is built.
pub fn sync_module<M: Module>(module: M, world: &World) -> M {
    if world.size() == 1 {
        return module;
    }
    let (mut values, trains) = flatten(&module);
    let (own, mean) = (if world.is_root() { 1.0 } else { 0.0 }, 1.0 / world.size() as f32);
    values.iter_mut().zip(&trains).for_each(|(v, &t)| *v *= if t { own } else { mean });
    world.sum_f32(&mut values);
    set_flat(module, values)
}

/// `module` with its float parameters set from `values` (the order of [`flatten`]).
fn set_flat<M: Module>(module: M, values: Vec<f32>) -> M {
    struct Set(Vec<f32>, usize);
    impl ModuleMapper for Set {
        fn map_float<const D: usize>(&mut self, p: Param<Tensor<D>>) -> Param<Tensor<D>> {
            let n = p.shape().num_elements();
            let v = self.0[self.1..self.1 + n].to_vec();
            self.1 += n;
            let require = p.is_require_grad();
            p.map(move |t| Tensor::<D>::from_data(TensorData::new(v, t.shape()), &t.device()).set_require_grad(require))
        }
    }
    module.map(&mut Set(values, 0))
}

/// Replace `grads` by `sum over ranks of scale_r * grads_r` (one all-reduce): with `scale` this
/// rank's share of the global loss, the gradient of the global batch. Every rank must hold
/// gradients for the same parameters (the same model and loss); `check` (the first step of a
/// run: one more collective, so not every step) makes a mismatch an error instead of garbage.
pub fn reduce_grads<M: Module>(module: &M, grads: &mut GradientsParams, scale: f32, world: &World, check: bool) -> Result<(), String> {
    struct Read<'a>(&'a GradientsParams, Vec<f32>, Vec<(ParamId, usize)>);
    impl ModuleVisitor for Read<'_> {
        fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<D>>) {
            if let Some(g) = self.0.get::<D>(p.id) {
                let v = g.into_data().convert::<f32>().try_into_vec::<f32>().expect("f32 gradients");
                self.2.push((p.id, v.len()));
                self.1.extend(v);
            }
        }
    }
    let mut r = Read(grads, vec![], vec![]);
    module.visit(&mut r);
    let (mut flat, ids) = (r.1, r.2);
    let mut count = [flat.len() as f64];
    if check {
        world.sum_f64(&mut count);
    }
    if check && count[0] != (flat.len() * world.size()) as f64 {
        return Err(format!("rank {}: {} gradient values here, {} over {} ranks: the ranks train different models", world.rank(), flat.len(), count[0], world.size()));
    }
    flat.iter_mut().for_each(|v| *v *= scale);
    world.sum_f32(&mut flat);
    struct Write<'a>(&'a mut GradientsParams, &'a [f32], &'a [(ParamId, usize)], usize, usize);
    impl ModuleVisitor for Write<'_> {
        fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<D>>) {
            let Some(&(id, n)) = self.2.get(self.3) else { return };
            if id != p.id {
                return;
            }
            let g: Tensor<D> = self.0.remove(id).expect("gradient read above");
            let t = Tensor::<D>::from_data(TensorData::new(self.1[self.4..self.4 + n].to_vec(), g.shape()), &g.device());
            self.0.register(id, t);
            (self.3, self.4) = (self.3 + 1, self.4 + n);
        }
    }
    module.visit(&mut Write(grads, &flat, &ids, 0, 0));
    Ok(())
}

#[cfg(feature = "mpi")]
mod mpi_impl {
    use std::sync::Mutex;

    use mpi::collective::SystemOperation;
    use mpi::environment::Universe;
    use mpi::topology::SimpleCommunicator;
    use mpi::traits::*;

    /// The world communicator. MPI runs at `Threading::Funneled` and only the main thread calls
    /// it (the engine's collectives run between steps), so sharing the handle is sound.
    pub struct Comm(SimpleCommunicator);
    unsafe impl Send for Comm {}
    unsafe impl Sync for Comm {}

    /// Kept until [`finalize`] drops it (its drop is MPI_Finalize).
    struct Held(#[allow(dead_code)] Universe);
    unsafe impl Send for Held {}
    static UNIVERSE: Mutex<Option<Held>> = Mutex::new(None);

    pub fn start() -> (Comm, usize, usize) {
        let (universe, _) = mpi::initialize_with_threading(mpi::Threading::Funneled).expect("MPI is initialised once");
        let world = universe.world();
        let (rank, size) = (world.rank() as usize, world.size() as usize);
        *UNIVERSE.lock().expect("not poisoned") = Some(Held(universe));
        (Comm(world), rank, size)
    }

    pub fn finalize() {
        // Dropping the universe calls MPI_Finalize.
        drop(UNIVERSE.lock().map(|mut u| u.take()));
    }

    impl Comm {
        pub fn sum_f32(&self, buf: &mut [f32]) {
            let send = buf.to_vec();
            self.0.all_reduce_into(&send[..], buf, SystemOperation::sum());
        }
        pub fn sum_f64(&self, buf: &mut [f64]) {
            let send = buf.to_vec();
            self.0.all_reduce_into(&send[..], buf, SystemOperation::sum());
        }
        pub fn broadcast_f32(&self, buf: &mut [f32]) {
            self.0.process_at_rank(0).broadcast_into(buf);
        }
        pub fn broadcast_f64(&self, buf: &mut [f64]) {
            self.0.process_at_rank(0).broadcast_into(buf);
        }
        pub fn barrier(&self) {
            self.0.barrier();
        }
        pub fn abort(&self, code: i32) -> ! {
            self.0.abort(code)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Device;
    use strata_models::{DLinearConfig, Shape};

    #[test]
    fn parameters_round_trip_through_the_flat_vector() {
        let device = Device::flex().autodiff();
        let m = DLinearConfig::default().init(Shape::lsf(336, 96, 7), &device);
        let (flat, trains) = flatten(&m);
        assert!(trains.iter().all(|&t| t));
        let back = set_flat(m.clone(), flat.clone());
        assert_eq!(flatten(&back).0, flat);
        let m = strata_models::ModelConfig::Dlinear(DLinearConfig::default()).init(Shape::lsf(336, 96, 7), None, &device);
        let (flat, _) = flatten(&m);
        let x = Tensor::<4>::ones([2, 336, 7, 1], &device);
        let before: Vec<f32> = m.forward(x.clone()).into_data().try_into_vec().unwrap();
        let back = set_flat(m, flat.clone());
        assert_eq!(flatten(&back).0, flat);
        let after: Vec<f32> = back.forward(x).into_data().try_into_vec().unwrap();
        assert_eq!(before, after);
    }
}
