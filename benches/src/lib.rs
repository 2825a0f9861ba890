//! silt-benches: the baselines silt is measured against (see `benches/README.md`).
//! `src/bin/raw_datafusion.rs` gives the query-layer limit (DataFusion over the
//! same Parquet files, no Delta log) and the write limit (arrow-rs Parquet
//! encode rate); `run.py` runs silt and the Python peers and writes the ratios.
