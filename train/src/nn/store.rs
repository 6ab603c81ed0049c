use mixco_model::arch::{TensorKind, TensorSpec};
use mixco_model::checkpoint::{HostTensor, TensorData};
use mixco_model::Checkpoint;
use tch::{Device, Kind, Tensor};

/// How a new tensor is filled.
#[derive(Clone, Copy, Debug)]
pub enum Init {
    Zeros,
    Ones,
    /// N(0, std²).
    Normal { std: f64 },
    /// U(-bound, bound).
    Uniform { bound: f64 },
}

pub struct Entry {
    pub name: String,
    pub tensor: Tensor,
    pub kind: TensorKind,
}

/// Every tensor of a model, by name; layers hold shallow clones (same storage).
pub struct Store {
    pub entries: Vec<Entry>,
    pub device: Device,
}

impl Store {
    pub fn new(device: Device) -> Store {
        Store { entries: Vec::new(), device }
    }

    /// Creates a tensor for `spec` and returns a handle to it.
    pub fn add(&mut self, spec: &TensorSpec, init: Init) -> Tensor {
        let shape: Vec<i64> = spec.shape.iter().map(|&d| d as i64).collect();
        let t = tch::no_grad(|| match (spec.kind, init) {
            (TensorKind::Counter, _) => Tensor::zeros(&shape, (Kind::Int64, self.device)),
            (_, Init::Zeros) => Tensor::zeros(&shape, (Kind::Float, self.device)),
            (_, Init::Ones) => Tensor::ones(&shape, (Kind::Float, self.device)),
            (_, Init::Normal { std }) => Tensor::randn(&shape, (Kind::Float, self.device)) * std,
            (_, Init::Uniform { bound }) => (Tensor::rand(&shape, (Kind::Float, self.device)) * 2.0 - 1.0) * bound,
        });
        let t = if spec.kind == TensorKind::Param { t.set_requires_grad(true) } else { t };
        self.entries.push(Entry { name: spec.name.clone(), tensor: t.shallow_clone(), kind: spec.kind });
        t
    }

    pub fn params(&self) -> impl Iterator<Item = &Entry> {
        self.entries.iter().filter(|e| e.kind == TensorKind::Param)
    }

    pub fn get(&self, name: &str) -> Option<&Tensor> {
        self.entries.iter().find(|e| e.name == name).map(|e| &e.tensor)
    }

    /// Copies every tensor of `other` (same architecture) into this store.
    pub fn copy_from(&self, other: &Store) {
        tch::no_grad(|| {
            for (a, b) in self.entries.iter().zip(&other.entries) {
                debug_assert_eq!(a.name, b.name);
                a.tensor.shallow_clone().copy_(&b.tensor);
            }
        });
    }

    /// Host copies of all tensors, named `prefix + name`.
    pub fn to_host(&self, prefix: &str) -> Vec<(String, HostTensor)> {
        self.entries.iter().map(|e| (format!("{prefix}{}", e.name), to_host(&e.tensor))).collect()
    }

    /// Loads `prefix + name` of every tensor from a checkpoint whose tensors
    /// were already checked for presence and shape.
    pub fn load(&self, ck: &Checkpoint, prefix: &str) {
        tch::no_grad(|| {
            for e in &self.entries {
                let host = &ck.tensors[&format!("{prefix}{}", e.name)];
                e.tensor.shallow_clone().copy_(&from_host(host, self.device));
            }
        });
    }
}

pub fn to_host(t: &Tensor) -> HostTensor {
    let shape: Vec<usize> = t.size().iter().map(|&d| d as usize).collect();
    let flat = t.detach().to_device(Device::Cpu).contiguous().view(-1);
    match t.kind() {
        Kind::Int64 => HostTensor::i64(shape, Vec::<i64>::try_from(&flat).expect("int64 tensor")),
        _ => HostTensor::f32(shape, Vec::<f32>::try_from(&flat.to_kind(Kind::Float)).expect("float tensor")),
    }
}

pub fn from_host(h: &HostTensor, device: Device) -> Tensor {
    let shape: Vec<i64> = h.shape.iter().map(|&d| d as i64).collect();
    let t = match &h.data {
        TensorData::F32(v) => Tensor::from_slice(v),
        TensorData::I64(v) => Tensor::from_slice(v),
    };
    t.view(shape.as_slice()).to_device(device)
}
