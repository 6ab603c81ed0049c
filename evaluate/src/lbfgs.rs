//! L-BFGS (Nocedal & Wright, *Numerical Optimization*, Algorithms 7.4 and
//! 7.5) with a line search that satisfies the strong Wolfe conditions
//! (Algorithms 3.5 and 3.6, cubic interpolation), as scipy's L-BFGS-B uses
//! for scikit-learn's `LogisticRegression(solver="lbfgs")`. The state is f64;
//! the objective decides its own arithmetic.
//!
//! ```
//! use mixco_eval::lbfgs::{minimise, Options, Stop};
//! // f(x) = (x0 - 1)^2 + 10 (x1 + 2)^2
//! let f = |x: &[f64], g: &mut [f64]| {
//!     g[0] = 2.0 * (x[0] - 1.0);
//!     g[1] = 20.0 * (x[1] + 2.0);
//!     (x[0] - 1.0).powi(2) + 10.0 * (x[1] + 2.0).powi(2)
//! };
//! let opts = Options { gtol: 1e-9, ftol: 0.0, ..Options::default() };
//! let out = minimise(f, vec![0.0, 0.0], &opts, |_| {});
//! assert_eq!(out.stop, Stop::Converged);
//! assert!((out.x[0] - 1.0).abs() < 1e-8 && (out.x[1] + 2.0).abs() < 1e-8);
//! ```

use std::collections::VecDeque;

#[derive(Clone, Debug)]
pub struct Options {
    pub max_iter: usize,
    /// Converged when every gradient entry is at most this in magnitude
    /// (scipy's `gtol`, scikit-learn's `tol`).
    pub gtol: f64,
    /// Converged when one iteration lowers f by at most this, relative.
    pub ftol: f64,
    /// Correction pairs kept (scipy's `maxcor`).
    pub memory: usize,
    /// Function evaluations one line search may spend (scipy's `maxls`).
    pub max_line_evals: usize,
}

impl Default for Options {
    fn default() -> Options {
        Options { max_iter: 100, gtol: 1e-4, ftol: 1e-10, memory: 10, max_line_evals: 20 }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Stop {
    /// Every gradient entry fell under `gtol`.
    Converged,
    /// One iteration lowered f by less than `ftol` (relative).
    Flat,
    MaxIterations,
    /// No step satisfied the Wolfe conditions (typically: f is flat to its
    /// own rounding error); the last accepted point is returned.
    LineSearch,
}

/// After each accepted step.
#[derive(Clone, Copy, Debug)]
pub struct Iterate {
    pub iteration: usize,
    pub f: f64,
    /// Largest gradient entry in magnitude.
    pub gmax: f64,
}

#[derive(Clone, Debug)]
pub struct Outcome {
    pub x: Vec<f64>,
    pub f: f64,
    pub iterations: usize,
    pub evaluations: usize,
    pub stop: Stop,
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn gmax(g: &[f64]) -> f64 {
    g.iter().fold(0.0f64, |m, v| m.max(v.abs()))
}

/// Minimises `f` (which returns f(x) and writes its gradient) from `x0`.
pub fn minimise<F>(mut f: F, x0: Vec<f64>, opts: &Options, mut on_iter: impl FnMut(Iterate)) -> Outcome
where
    F: FnMut(&[f64], &mut [f64]) -> f64,
{
    let mut x = x0;
    let mut g = vec![0.0; x.len()];
    let mut fx = f(&x, &mut g);
    let mut evaluations = 1;
    let mut pairs: VecDeque<Pair> = VecDeque::with_capacity(opts.memory);
    let done = |iterations, evaluations, stop, x, f| Outcome { x, f, iterations, evaluations, stop };
    if gmax(&g) <= opts.gtol {
        return done(0, evaluations, Stop::Converged, x, fx);
    }
    for k in 0..opts.max_iter {
        let mut d = direction(&g, &pairs);
        let mut slope = dot(&d, &g);
        if !(slope < 0.0) {
            // Not a descent direction (lost curvature): restart from -g.
            pairs.clear();
            d = g.iter().map(|v| -v).collect();
            slope = -dot(&g, &g);
        }
        // The first step has no curvature estimate: take unit length.
        let step0 = if pairs.is_empty() { (1.0 / dot(&d, &d).sqrt()).min(1.0) } else { 1.0 };
        let mut search = Search { f: &mut f, x: &x, d: &d, f0: fx, slope0: slope, evals: 0, max_evals: opts.max_line_evals };
        let found = search.run(step0);
        evaluations += search.evals;
        let Some(p) = found else {
            return done(k, evaluations, Stop::LineSearch, x, fx);
        };
        let s: Vec<f64> = d.iter().map(|v| p.step * v).collect();
        let y: Vec<f64> = p.g.iter().zip(&g).map(|(a, b)| a - b).collect();
        let sy = dot(&s, &y);
        if sy > 1e-12 * dot(&y, &y) {
            if pairs.len() == opts.memory {
                pairs.pop_front();
            }
            pairs.push_back(Pair { rho: 1.0 / sy, s, y });
        }
        let decrease = fx - p.f;
        x = p.x;
        g = p.g;
        let scale = fx.abs().max(p.f.abs()).max(1.0);
        fx = p.f;
        on_iter(Iterate { iteration: k + 1, f: fx, gmax: gmax(&g) });
        if gmax(&g) <= opts.gtol {
            return done(k + 1, evaluations, Stop::Converged, x, fx);
        }
        if decrease <= opts.ftol * scale {
            return done(k + 1, evaluations, Stop::Flat, x, fx);
        }
    }
    done(opts.max_iter, evaluations, Stop::MaxIterations, x, fx)
}

struct Pair {
    s: Vec<f64>,
    y: Vec<f64>,
    rho: f64,
}

/// -H·g by the two-loop recursion, H0 = (sᵀy / yᵀy) I from the newest pair.
fn direction(g: &[f64], pairs: &VecDeque<Pair>) -> Vec<f64> {
    let mut q: Vec<f64> = g.to_vec();
    let mut alphas = Vec::with_capacity(pairs.len());
    for p in pairs.iter().rev() {
        let a = p.rho * dot(&p.s, &q);
        q.iter_mut().zip(&p.y).for_each(|(qi, yi)| *qi -= a * yi);
        alphas.push(a);
    }
    if let Some(p) = pairs.back() {
        let gamma = 1.0 / (p.rho * dot(&p.y, &p.y));
        q.iter_mut().for_each(|v| *v *= gamma);
    }
    for (p, a) in pairs.iter().zip(alphas.iter().rev()) {
        let b = p.rho * dot(&p.y, &q);
        q.iter_mut().zip(&p.s).for_each(|(qi, si)| *qi += (a - b) * si);
    }
    q.iter_mut().for_each(|v| *v = -*v);
    q
}

/// A point on the search line: step, f, directional derivative, x, gradient.
struct Point {
    step: f64,
    f: f64,
    slope: f64,
    x: Vec<f64>,
    g: Vec<f64>,
}

struct Search<'a, F> {
    f: &'a mut F,
    x: &'a [f64],
    d: &'a [f64],
    f0: f64,
    slope0: f64,
    evals: usize,
    max_evals: usize,
}

const C1: f64 = 1e-4;
const C2: f64 = 0.9;

impl<F: FnMut(&[f64], &mut [f64]) -> f64> Search<'_, F> {
    fn eval(&mut self, step: f64) -> Point {
        self.evals += 1;
        let x: Vec<f64> = self.x.iter().zip(self.d).map(|(x, d)| x + step * d).collect();
        let mut g = vec![0.0; x.len()];
        let f = (self.f)(&x, &mut g);
        // A non-finite value counts as "far too high" below.
        let f = if f.is_finite() { f } else { f64::INFINITY };
        Point { step, f, slope: dot(&g, self.d), x, g }
    }

    fn sufficient(&self, p: &Point) -> bool {
        p.f <= self.f0 + C1 * p.step * self.slope0
    }

    fn curvature(&self, p: &Point) -> bool {
        p.slope.abs() <= -C2 * self.slope0
    }

    /// Algorithm 3.5: grow the step until it brackets a Wolfe point.
    fn run(&mut self, step0: f64) -> Option<Point> {
        let mut prev: Option<Point> = None;
        let mut step = step0;
        while self.evals < self.max_evals {
            let p = self.eval(step);
            if !self.sufficient(&p) || prev.as_ref().is_some_and(|q| p.f >= q.f) {
                return self.zoom(prev, p);
            }
            if self.curvature(&p) {
                return Some(p);
            }
            if p.slope >= 0.0 {
                return self.zoom(Some(p), prev.unwrap_or_else(|| self.origin()));
            }
            step *= 2.0;
            prev = Some(p);
        }
        prev
    }

    /// The start of the line (no gradient needed: it is never returned).
    fn origin(&self) -> Point {
        Point { step: 0.0, f: self.f0, slope: self.slope0, x: Vec::new(), g: Vec::new() }
    }

    /// Algorithm 3.6: shrink [lo, hi] (lo: the best sufficient-decrease
    /// point so far, or the origin) until a step satisfies both conditions.
    fn zoom(&mut self, lo: Option<Point>, mut hi: Point) -> Option<Point> {
        let mut lo = lo.unwrap_or_else(|| self.origin());
        while self.evals < self.max_evals {
            let width = (hi.step - lo.step).abs();
            if width <= 1e-12 * hi.step.abs().max(lo.step.abs()) {
                break;
            }
            let step = cubic_min(&lo, &hi).unwrap_or(0.5 * (lo.step + hi.step));
            let (a, b) = (lo.step.min(hi.step), lo.step.max(hi.step));
            // Keep the trial away from the ends, or the interval stalls.
            let step = step.clamp(a + 0.1 * width, b - 0.1 * width);
            let p = self.eval(step);
            if !self.sufficient(&p) || p.f >= lo.f {
                hi = p;
                continue;
            }
            if self.curvature(&p) {
                return Some(p);
            }
            if p.slope * (hi.step - lo.step) >= 0.0 {
                hi = std::mem::replace(&mut lo, p);
            } else {
                lo = p;
            }
        }
        // Out of evaluations: the best decrease found, if any.
        (lo.step > 0.0 && lo.f < self.f0).then_some(lo)
    }
}

/// The minimiser of the cubic through two points' values and slopes
/// (Nocedal & Wright, equation 3.59), if it exists.
fn cubic_min(a: &Point, b: &Point) -> Option<f64> {
    if !a.f.is_finite() || !b.f.is_finite() {
        return None;
    }
    let d1 = a.slope + b.slope - 3.0 * (a.f - b.f) / (a.step - b.step);
    let disc = d1 * d1 - a.slope * b.slope;
    if !(disc >= 0.0) {
        return None;
    }
    let d2 = (b.step - a.step).signum() * disc.sqrt();
    let step = b.step - (b.step - a.step) * (b.slope + d2 - d1) / (b.slope - a.slope + 2.0 * d2);
    step.is_finite().then_some(step)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rosenbrock(x: &[f64], g: &mut [f64]) -> f64 {
        let mut f = 0.0;
        g.iter_mut().for_each(|v| *v = 0.0);
        for i in 0..x.len() - 1 {
            let (a, b) = (1.0 - x[i], x[i + 1] - x[i] * x[i]);
            f += a * a + 100.0 * b * b;
            g[i] += -2.0 * a - 400.0 * x[i] * b;
            g[i + 1] += 200.0 * b;
        }
        f
    }

    #[test]
    fn finds_the_rosenbrock_minimum() {
        let opts = Options { max_iter: 500, gtol: 1e-8, ftol: 0.0, ..Options::default() };
        let mut seen = 0;
        let out = minimise(rosenbrock, vec![-1.2, 1.0, -1.2, 1.0, -1.2], &opts, |it| {
            seen += 1;
            assert_eq!(it.iteration, seen);
        });
        assert_eq!(out.stop, Stop::Converged, "{out:?}");
        assert!(out.x.iter().all(|v| (v - 1.0).abs() < 1e-6), "{out:?}");
        assert_eq!(seen, out.iterations);
        // Each iteration's line search mostly accepts its first trial.
        assert!(out.evaluations < 2 * out.iterations + 10, "{out:?}");
    }

    #[test]
    fn stops_at_the_iteration_limit_and_at_a_minimum_start() {
        let out = minimise(rosenbrock, vec![-1.2, 1.0], &Options { max_iter: 3, ..Options::default() }, |_| {});
        assert_eq!((out.stop, out.iterations), (Stop::MaxIterations, 3));
        assert!(out.f < 24.2, "f decreased from 24.2: {out:?}");
        let out = minimise(rosenbrock, vec![1.0, 1.0], &Options::default(), |_| {});
        assert_eq!((out.stop, out.iterations, out.evaluations), (Stop::Converged, 0, 1));
    }

    #[test]
    fn a_non_finite_region_is_stepped_around() {
        // Infinite from x = 2, where the first (unit-length) step lands.
        let f = |x: &[f64], g: &mut [f64]| {
            g[0] = 2.0 * (x[0] - 1.95);
            if x[0] >= 2.0 { f64::INFINITY } else { (x[0] - 1.95).powi(2) }
        };
        let out = minimise(f, vec![1.0], &Options { gtol: 1e-10, ..Options::default() }, |_| {});
        assert!(out.f.is_finite() && (out.x[0] - 1.95).abs() < 1e-6, "{out:?}");
        assert!(out.stop == Stop::Converged, "{out:?}");
    }
}
