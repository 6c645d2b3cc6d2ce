mod cli;
mod login;
mod replay;
