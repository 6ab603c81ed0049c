//! A seeded mutator for robustness tests of parsers: truncations, bit flips,
//! bytes set to boundary values, little-endian length fields set huge, and
//! spliced or dropped ranges of a valid file. Each variant must end in `Ok`
//! or a named error: never a panic, an abort or a hang.

/// SplitMix64: small, seeded, the same on every machine.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// `count` variants of `valid` from `seed`; every truncation point first
/// when the file is short enough, then random mutations (1-4 each). Made
/// one at a time: `make fuzz`'s 100,000 variants of a 420 KB checkpoint,
/// held at once, reached 24 GB and were killed by the kernel.
pub fn mutants(valid: &[u8], count: usize, seed: u64) -> impl Iterator<Item = Vec<u8>> + '_ {
    let mut rng = Rng(seed);
    let truncations = if valid.len() <= count / 4 { valid.len() } else { 0 };
    (0..count).map(move |i| {
        if i < truncations {
            return valid[..i].to_vec();
        }
        let mut v = valid.to_vec();
        for _ in 0..1 + rng.below(4) {
            mutate(&mut v, &mut rng);
        }
        v
    })
}

fn mutate(v: &mut Vec<u8>, rng: &mut Rng) {
    if v.is_empty() {
        v.push(rng.next() as u8);
        return;
    }
    let at = rng.below(v.len());
    match rng.below(7) {
        0 => v.truncate(at),
        1 => v[at] ^= 1 << rng.below(8),
        2 => v[at] = [0x00, 0xff, 0x7f, 0x80, 0x01][rng.below(5)],
        3 => {
            // A length or offset field (2, 4 or 8 bytes) made huge or zero.
            let width = [2, 4, 8][rng.below(3)];
            let fill = if rng.below(3) == 0 { 0x00 } else { 0xff };
            let end = (at + width).min(v.len());
            v[at..end].iter_mut().enumerate().for_each(|(i, b)| *b = if i + 1 == width && fill == 0xff { 0x7f } else { fill });
        }
        4 => {
            // Duplicate a range elsewhere (repeated structures, nesting).
            let len = 1 + rng.below(64.min(v.len() - at));
            let chunk = v[at..at + len].to_vec();
            let to = rng.below(v.len() + 1);
            v.splice(to..to, chunk);
        }
        5 => {
            let len = 1 + rng.below(64.min(v.len() - at));
            v.drain(at..at + len);
        }
        _ => v.insert(at, rng.next() as u8),
    }
}

/// How many variants a robustness test tries: a few thousand in `make
/// test`, `MIXCO_FUZZ` of them under `make fuzz`.
pub fn budget(default: usize) -> usize {
    std::env::var("MIXCO_FUZZ").ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Runs `parse` on every variant, failing the test (with the variant's
/// index and seed) on a panic.
pub fn check_no_panic<T, E>(name: &str, valid: &[u8], count: usize, seed: u64, mut parse: impl FnMut(&[u8]) -> Result<T, E>) {
    for (i, v) in mutants(valid, count, seed).enumerate() {
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _ = parse(&v);
        }));
        assert!(r.is_ok(), "{name}: variant {i} of seed {seed} ({} bytes) panicked", v.len());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_and_varied() {
        let valid: Vec<u8> = (0..200u8).collect();
        let a: Vec<Vec<u8>> = mutants(&valid, 1000, 7).collect();
        assert_eq!(a, mutants(&valid, 1000, 7).collect::<Vec<_>>());
        assert_ne!(a, mutants(&valid, 1000, 8).collect::<Vec<_>>());
        assert_eq!(a.len(), 1000);
        assert!(a[..200].iter().enumerate().all(|(n, v)| v[..] == valid[..n]), "truncations first");
        let distinct: std::collections::HashSet<&Vec<u8>> = a.iter().collect();
        assert!(distinct.len() > 900, "{} distinct", distinct.len());
        assert!(a.iter().any(|v| v.len() > valid.len()) && a.iter().any(|v| v.len() < valid.len()));
    }
}
