//! `mixco plot`: training logs to a PNG and an SVG, and clear errors for bad logs.

mod util;
use util::{mixco, text};

#[test]
fn plot_draws_logs_and_names_bad_lines() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("moco");
    std::fs::create_dir(&run).unwrap();
    std::fs::write(
        run.join("log.jsonl"),
        "{\"epoch\":0,\"loss_contrastive\":null,\"loss_mix\":null,\"knn_top1\":0.3}\n\
         {\"epoch\":1,\"loss_contrastive\":7.3,\"loss_mix\":7.4,\"knn_top1\":0.37}\n\
         {\"epoch\":2,\"loss_contrastive\":7.0,\"loss_mix\":7.5,\"knn_top1\":0.40}\n",
    )
    .unwrap();
    let png = dir.path().join("c.png");
    let o = mixco(&["plot", run.to_str().unwrap(), "-o", png.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let bytes = std::fs::read(&png).unwrap();
    assert_eq!(&bytes[1..4], b"PNG");

    std::fs::write(run.join("log.jsonl"), "{\"epoch\":0}\nnot json\n").unwrap();
    let o = mixco(&["plot", run.to_str().unwrap(), "-o", dir.path().join("d.png").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(e.contains("log.jsonl: line 2: not a log line"), "{e}");
    assert!(!dir.path().join("d.png").exists());
}

fn write_log(dir: &std::path::Path, name: &str, knn: [f64; 3]) -> std::path::PathBuf {
    let run = dir.join(name);
    std::fs::create_dir(&run).unwrap();
    let lines: Vec<String> = (0..3)
        .map(|e| format!("{{\"epoch\":{e},\"loss_contrastive\":{},\"loss_mix\":{},\"knn_top1\":{},\"query_cosine\":0.5}}", 7.0 - e as f64 * 0.3, 6.9, knn[e]))
        .collect();
    std::fs::write(run.join("log.jsonl"), lines.join("\n") + "\n").unwrap();
    run
}

/// resvg (scripts/svg_render.py: an independent renderer, no system fonts)
/// draws `svg` at `zoom`; None (and a message) without the venv or the wheel.
fn resvg(svg: &std::path::Path, zoom: f64) -> Option<image::RgbImage> {
    let out = svg.with_extension("resvg.png");
    util::venv_script("svg_render.py", &[svg.as_os_str(), out.as_os_str(), zoom.to_string().as_ref()], "resvg_py")?;
    Some(image::open(&out).unwrap().to_rgb8())
}

/// Issue 32: several runs overlaid, each named in the legend, written as a
/// PNG and an SVG beside it; resvg's drawing of the SVG (whose text is the
/// font's outlines: it has no font to fall back on) matches mixco's PNG
/// pixel for pixel but for antialiasing.
#[test]
fn plot_overlays_runs_and_its_svg_shows_what_its_png_shows() {
    let dir = tempfile::tempdir().unwrap();
    let a = write_log(dir.path(), "moco", [0.2, 0.3, 0.35]);
    let b = write_log(dir.path(), "mixco & co", [0.2, 0.4, 0.5]);
    let png = dir.path().join("cmp.png");
    let o = mixco(&[
        "plot",
        a.to_str().unwrap(),
        b.to_str().unwrap(),
        "-o",
        png.to_str().unwrap(),
        "--title",
        "MoCo vs MixCo",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let svg = png.with_extension("svg");
    assert!(
        text(&o).contains(&format!("wrote {}", svg.display())),
        "{}",
        text(&o)
    );
    let doc = std::fs::read_to_string(&svg).unwrap();
    for label in [
        "MoCo vs MixCo",
        "moco",
        "mixco &amp; co",
        "epoch",
        "kNN top-1 (%)",
        "MixCo loss",
        "mean cosine between images",
    ] {
        assert!(
            doc.contains(&format!("aria-label=\"{label}\"")),
            "{label} in the SVG"
        );
    }
    assert!(!doc.contains("<text"), "text is drawn as outlines");
    let ours = image::open(&png).unwrap().to_rgb8();
    // Naming the SVG writes the PNG beside it.
    let o = mixco(&[
        "plot",
        a.to_str().unwrap(),
        "-o",
        dir.path().join("one.svg").to_str().unwrap(),
    ]);
    assert!(
        o.status.success() && dir.path().join("one.png").is_file(),
        "{}",
        text(&o)
    );

    let Some(theirs) = resvg(&svg, 2.0) else {
        return;
    };
    assert_eq!(
        theirs.dimensions(),
        ours.dimensions(),
        "the PNG is the SVG at twice its size"
    );
    let (far, mean) = difference(&ours, &theirs);
    eprintln!(
        "resvg vs mixco's PNG: {:.3}% of pixels differ by more than 64, mean difference {mean:.3}",
        100.0 * far
    );
    assert!(
        far < 0.002 && mean < 0.4,
        "{:.3}% of pixels far apart, mean {mean:.3}",
        100.0 * far
    );
    // The comparison sees text: without its glyphs the SVG is far from the PNG.
    let bare = dir.path().join("bare.svg");
    std::fs::write(
        &bare,
        doc.lines()
            .filter(|l| !l.starts_with("<use "))
            .collect::<Vec<_>>()
            .join("\n"),
    )
    .unwrap();
    let (far, mean) = difference(&ours, &resvg(&bare, 2.0).unwrap());
    eprintln!("without text: {:.3}%, mean {mean:.3}", 100.0 * far);
    assert!(
        far > 0.002 && mean > 0.4,
        "{:.3}% of pixels far apart, mean {mean:.3}",
        100.0 * far
    );
}

/// The share of pixels whose largest channel difference is over 64, and the mean of that difference.
fn difference(a: &image::RgbImage, b: &image::RgbImage) -> (f64, f64) {
    let d: Vec<u8> = a
        .pixels()
        .zip(b.pixels())
        .map(|(p, q)| (0..3).map(|c| p.0[c].abs_diff(q.0[c])).max().unwrap())
        .collect();
    (
        d.iter().filter(|x| **x > 64).count() as f64 / d.len() as f64,
        d.iter().map(|x| *x as f64).sum::<f64>() / d.len() as f64,
    )
}
