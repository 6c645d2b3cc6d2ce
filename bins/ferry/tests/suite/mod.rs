mod cli;
mod login;
