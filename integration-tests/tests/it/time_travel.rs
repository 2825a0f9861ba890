//! `TIMESTAMP AS OF` resolves by the commit timestamps in the log, so it stays
//! right when the log files' modification times change (copies, restores).

use std::process::Command;

use crate::harness::Silt;

#[test]
fn timestamp_as_of_ignores_file_modification_times() {
    let silt = Silt::new();
    silt.ok(&["sql", "CREATE TABLE t (id BIGINT)"]);
    for i in 1..=3 {
        std::thread::sleep(std::time::Duration::from_millis(50));
        silt.ok(&["sql", &format!("INSERT INTO t VALUES ({i})")]);
    }
    let history = silt.rows("DESCRIBE HISTORY t");
    assert_eq!(history.len(), 4);
    let commits: Vec<(u64, String)> = history
        .iter()
        .map(|row| {
            (
                row[0].as_u64().expect("version"),
                row[1].as_str().expect("timestamp").to_string(),
            )
        })
        .collect();

    // Every log file now claims to be from 2001.
    let log_dir = silt.warehouse().join("t/_delta_log");
    for entry in std::fs::read_dir(&log_dir).expect("log dir") {
        let path = entry.expect("entry").path();
        let status = Command::new("touch")
            .arg("-d")
            .arg("2001-01-01")
            .arg(&path)
            .status()
            .expect("touch");
        assert!(status.success());
    }

    for (version, timestamp) in &commits {
        let count = silt.scalar(&format!("SELECT count(*) FROM t TIMESTAMP AS OF '{timestamp}'"));
        assert_eq!(
            count.as_u64(),
            Some(*version),
            "TIMESTAMP AS OF {timestamp} should be version {version}"
        );
    }
    // Before the first commit is an error, even though the files say 2001.
    let run = silt.run(&["sql", "SELECT * FROM t TIMESTAMP AS OF '2020-01-01T00:00:00Z'"]);
    assert_eq!(run.code, Some(3), "{}", run.stderr);
}
