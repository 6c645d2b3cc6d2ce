mod event_parse;
mod request;
mod response;
mod stop_sequences;
mod stream;
mod stream_props;
mod upstream;
