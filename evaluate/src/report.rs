//! The evaluation report: one versioned format (`schema`), written by
//! `mixco eval --json` (one report per dataset; `--transfer` writes a list)
//! and read back here and by `scripts/results_table.py`; with its CSV and
//! Markdown transfer matrices and its bar chart.

use crate::probe::ProbeResult;
use mixco_data::{fsutil, Error};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Bumped when a field changes meaning or goes away; readers check it.
pub const SCHEMA: &str = "mixco-eval-report-v1";

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ModelResult {
    pub model: String,
    pub sha256: String,
    /// How a foreign model was fed and read (output, normalisation, pooling).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub feeding: String,
    pub linear: ProbeResult,
    /// (k, top-1) of the weighted kNN.
    pub knn_top1: Vec<(usize, f64)>,
    /// Wall time of feature extraction (both splits), kNN and the probe.
    pub seconds: Timings,
}

impl ModelResult {
    /// kNN top-1 at `k`, if it was measured.
    pub fn knn(&self, k: usize) -> Option<f64> {
        self.knn_top1.iter().find(|(kk, _)| *kk == k).map(|(_, v)| *v)
    }
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Timings {
    pub features: f64,
    pub knn: f64,
    pub probe: f64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Report {
    pub schema: String,
    pub dataset: String,
    pub train_images: usize,
    pub test_images: usize,
    pub resize_policy: String,
    /// CIFAR files cut short on purpose; absent for the official data.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cut: Vec<String>,
    pub results: Vec<ModelResult>,
}

/// The JSON of one report, or of a list of them (the transfer matrix).
pub fn to_json(reports: &[Report], list: bool) -> String {
    let json = if list { serde_json::to_string_pretty(reports) } else { serde_json::to_string_pretty(&reports[0]) };
    json.expect("reports serialise")
}

/// The reports in `path`: one report or a list, each of this [`SCHEMA`].
pub fn read(path: &Path) -> Result<Vec<Report>, Error> {
    let text = fsutil::read_text(path)?;
    let value: serde_json::Value = serde_json::from_str(&text).map_err(|e| Error::format(path, format!("not JSON: {e}")))?;
    let items = match value {
        serde_json::Value::Array(items) => items,
        one => vec![one],
    };
    items
        .into_iter()
        .map(|item| {
            let mut item = item;
            match item.get("schema") {
                Some(serde_json::Value::String(s)) if s == SCHEMA => {}
                // Reports from before the field existed have this layout.
                None if item.is_object() => item["schema"] = SCHEMA.into(),
                Some(other) => return Err(Error::format(path, format!("report schema {other}; this mixco reads {SCHEMA}"))),
                None => return Err(Error::format(path, "not a mixco eval report (neither an object nor a list of them)")),
            }
            serde_json::from_value(item).map_err(|e| Error::format(path, format!("not a {SCHEMA} report: {e}")))
        })
        .collect()
}

/// The matrix's header and rows: models down, each dataset's linear and
/// kNN (k = 200) top-1 (%) across.
pub fn matrix_rows(reports: &[Report]) -> (Vec<String>, Vec<Vec<String>>) {
    let mut header = vec!["encoder".to_string()];
    for r in reports {
        header.push(format!("{} linear", r.dataset));
        header.push(format!("{} kNN", r.dataset));
    }
    let rows = reports[0]
        .results
        .iter()
        .map(|m| {
            let mut row = vec![m.model.clone()];
            for r in reports {
                // By name: a model missing from a dataset's report (or a kNN k) shows "-".
                let res = r.results.iter().find(|x| x.model == m.model);
                row.push(percent(res.map(|x| x.linear.top1), ""));
                row.push(percent(res.and_then(|x| x.knn(200)), ""));
            }
            row
        })
        .collect();
    (header, rows)
}

/// A fraction as a percentage with two decimals and `unit` ("%" in the
/// CLI's tables, none in the matrix files), or "-" where it was not measured.
pub fn percent(v: Option<f64>, unit: &str) -> String {
    v.map(|v| format!("{:.2}{unit}", 100.0 * v)).unwrap_or_else(|| "-".into())
}

pub fn markdown(reports: &[Report]) -> String {
    let (header, rows) = matrix_rows(reports);
    let mut md = format!("| {} |\n|{}\n", header.join(" | "), "---|".repeat(header.len()));
    for r in rows {
        md += &format!("| {} |\n", r.join(" | "));
    }
    md
}

pub fn csv(reports: &[Report]) -> String {
    let mut csv = String::from("model,dataset,linear_top1,linear_top5,knn20_top1,knn200_top1\n");
    for r in reports {
        for m in &r.results {
            let knn = |k| m.knn(k).map(|v| format!("{v:.4}")).unwrap_or_default();
            csv += &format!("{},{},{:.4},{:.4},{},{}\n", m.model, r.dataset, m.linear.top1, m.linear.top5, knn(20), knn(200));
        }
    }
    csv
}

/// Linear and kNN-200 top-1 of every model on every dataset, as bars.
pub fn chart(reports: &[Report]) -> crate::chart::Figure {
    use crate::chart::{bar_chart, Series};
    let groups: Vec<String> = reports.iter().flat_map(|r| [format!("{} linear", r.dataset), format!("{} kNN-200", r.dataset)]).collect();
    let series = reports[0]
        .results
        .iter()
        .map(|m| Series {
            label: m.model.clone(),
            values: reports
                .iter()
                .flat_map(|r| {
                    let res = r.results.iter().find(|x| x.model == m.model);
                    [res.map(|x| 100.0 * x.linear.top1), res.and_then(|x| x.knn(200)).map(|v| 100.0 * v)]
                })
                .collect(),
        })
        .collect::<Vec<_>>();
    bar_chart("top-1 accuracy (%)", &groups, &series)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lbfgs::Stop;
    use crate::probe::FitStats;

    fn report(dataset: &str, top1: [f64; 2]) -> Report {
        let result = |model: &str, t: f64| ModelResult {
            model: model.into(),
            sha256: "ab".repeat(32),
            feeding: String::new(),
            linear: ProbeResult { top1: t, top5: 0.9, alpha: 1.0, grid: vec![(1.0, t)], fits: vec![FitStats { alpha: 1.0, rows: 10, iterations: 3, evaluations: 4, loss: 0.5, stop: Stop::Converged, seconds: 0.0 }] },
            knn_top1: vec![(20, t - 0.01), (200, t - 0.02)],
            seconds: Timings::default(),
        };
        Report { schema: SCHEMA.into(), dataset: dataset.into(), train_images: 10, test_images: 5, resize_policy: "p".into(), cut: vec![], results: vec![result("a.onnx", top1[0]), result("random resnet10", top1[1])] }
    }

    #[test]
    fn reports_read_back_and_old_ones_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let reports = vec![report("cifar10", [0.5, 0.3]), report("cifar100", [0.2, 0.1])];
        for list in [false, true] {
            let path = dir.path().join("r.json");
            std::fs::write(&path, to_json(&reports, list)).unwrap();
            let back = read(&path).unwrap();
            assert_eq!(back.len(), if list { 2 } else { 1 });
            assert_eq!(to_json(&back, list), to_json(&reports[..back.len()], list), "the same JSON after a round trip");
        }
        // Written before the field existed: the same layout.
        let path = dir.path().join("old.json");
        let old = to_json(&reports, true).replace(&format!("\"schema\": \"{SCHEMA}\",\n"), "");
        assert!(!old.contains("schema"));
        std::fs::write(&path, old).unwrap();
        assert_eq!(read(&path).unwrap().len(), 2);
        std::fs::write(&path, r#"{"schema":"mixco-eval-report-v9"}"#).unwrap();
        assert!(read(&path).unwrap_err().to_string().contains("report schema \"mixco-eval-report-v9\""));
        std::fs::write(&path, "[3]").unwrap();
        assert!(read(&path).unwrap_err().to_string().contains("not a mixco eval report"));
    }

    #[test]
    fn matrices_put_models_down_and_datasets_across() {
        let reports = [report("cifar10", [0.5, 0.3]), report("cifar100", [0.2, 0.1])];
        assert_eq!(
            markdown(&reports),
            "| encoder | cifar10 linear | cifar10 kNN | cifar100 linear | cifar100 kNN |\n|---|---|---|---|---|\n\
             | a.onnx | 50.00 | 48.00 | 20.00 | 18.00 |\n| random resnet10 | 30.00 | 28.00 | 10.00 | 8.00 |\n"
        );
        let csv = csv(&reports);
        assert_eq!(csv.lines().nth(1), Some("a.onnx,cifar10,0.5000,0.9000,0.4900,0.4800"));
        assert_eq!(csv.lines().count(), 5);
        // A report read from a file may lack a k or a model: blank, not a panic.
        let mut partial = reports.clone();
        partial[1].results[0].knn_top1.truncate(1);
        partial[1].results.pop();
        assert!(markdown(&partial).contains("| random resnet10 | 30.00 | 28.00 | - | - |"), "{}", markdown(&partial));
        let partial_csv = super::csv(&partial);
        assert!(partial_csv.contains("a.onnx,cifar100,0.2000,0.9000,0.1900,\n"), "{partial_csv}");
        let fig = chart(&reports);
        assert_eq!(&fig.png()[1..4], b"PNG");
        let svg = fig.svg();
        for label in ["cifar10 linear", "cifar100 kNN-200", "a.onnx", "random resnet10", "48.0", "8.0"] {
            assert!(svg.contains(&format!("aria-label=\"{label}\"")), "{label}");
        }
    }
}
