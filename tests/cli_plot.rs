//! `mixco plot`: training logs to a PNG, and clear errors for bad logs.

mod util;
use util::mixco;

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
