//! molt supervisor (under construction).
