mod builders;
mod invariants;
mod tidy;
