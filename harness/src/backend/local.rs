//! The local backend (being written).
