//! Integration tests for silt; see tests/it.
