//! Integration tests for silt live in `tests/it/`: they run the real `silt`
//! binary (built by `cargo build -p silt`) and the Python peers
//! (`scripts/setup-python.sh`) against temporary warehouses.
