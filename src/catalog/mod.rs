//! GPU and model catalogs (to be written).
