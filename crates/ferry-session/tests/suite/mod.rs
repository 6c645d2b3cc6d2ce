mod continuation;
mod economy;
mod keys;
mod memory;
mod redis;
mod sessions;
mod store;
mod support;
