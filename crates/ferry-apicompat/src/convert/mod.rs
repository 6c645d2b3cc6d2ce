//! Conversions between the two APIs: [`request`] (Anthropic → Responses), [`response`]
//! (Responses JSON → Anthropic message) and [`stream`] (Responses events → Anthropic events).
