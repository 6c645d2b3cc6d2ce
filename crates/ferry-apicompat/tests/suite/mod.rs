mod event_parse;
mod request;
mod response;
mod stream;
mod stream_props;
mod upstream;
