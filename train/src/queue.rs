use tch::{Device, Kind, Tensor};

/// MoCo's dictionary: the last K keys, replaced first-in first-out.
pub struct Queue {
    /// `[K, D]`, rows are L2-normalised keys.
    pub keys: Tensor,
    pub ptr: usize,
}

impl Queue {
    /// Starts with random unit vectors, as MoCo does.
    pub fn new(size: usize, dim: usize, device: Device) -> Queue {
        let keys = Tensor::randn([size as i64, dim as i64], (Kind::Float, device));
        let norm = keys.norm_scalaropt_dim(2, [1], true);
        Queue { keys: keys / norm, ptr: 0 }
    }

    pub fn len(&self) -> usize {
        self.keys.size()[0] as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Overwrites the oldest rows with `k` (`[N, D]`), wrapping around.
    pub fn push(&mut self, k: &Tensor) {
        let n = k.size()[0] as usize;
        let size = self.len();
        tch::no_grad(|| {
            let mut done = 0;
            while done < n {
                let take = (size - self.ptr).min(n - done);
                self.keys
                    .narrow(0, self.ptr as i64, take as i64)
                    .copy_(&k.narrow(0, done as i64, take as i64).detach());
                self.ptr = (self.ptr + take) % size;
                done += take;
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fifo_order_and_wrap() {
        let mut q = Queue::new(5, 1, Device::Cpu);
        q.push(&Tensor::from_slice(&[1f32, 2., 3.]).view([3, 1]));
        assert_eq!(q.ptr, 3);
        q.push(&Tensor::from_slice(&[4f32, 5., 6.]).view([3, 1]));
        // 6 overwrote the oldest row (1).
        assert_eq!(Vec::<f32>::try_from(q.keys.view(-1)).unwrap(), vec![6., 2., 3., 4., 5.]);
        assert_eq!(q.ptr, 1);
    }
}
