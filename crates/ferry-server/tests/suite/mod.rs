mod common;
mod errors;
mod streaming;
mod text;
mod tools;
