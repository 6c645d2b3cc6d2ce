mod request;
mod response;
mod stream;
