//! Discrete-event serving-engine simulator (to be written).
