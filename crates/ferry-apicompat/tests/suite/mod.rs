mod request;
mod response;
mod stream;
mod upstream;
mod stream_props;
