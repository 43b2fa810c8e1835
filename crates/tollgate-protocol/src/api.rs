//! The APIs the gateway speaks, on both sides of it: the protocol a client calls in, the
//! protocol an upstream answers in, and the operation an upstream call performs. One value
//! each, so that every (client, upstream) pair is one row of translations.

/// A model API protocol, on the client's side or the upstream's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Protocol {
    /// OpenAI Chat Completions (`/chat/completions`). Its error shape,
    /// `{"error": {"message", "type", "param", "code"}}`, is also every OpenAI-style and
    /// management route's.
    #[default]
    Chat,
    /// Anthropic Messages (`/v1/messages`); errors `{"type": "error", "error": {…}}`.
    Messages,
    /// OpenAI Responses (`/responses`); errors in OpenAI's shape, as Chat Completions'.
    Responses,
}

impl Protocol {
    /// The protocol a route speaks, from its path (without any `SERVER_ROOT_PATH`): the
    /// Anthropic routes (`/v1/messages…`, `/messages…`) speak Messages, the Responses routes
    /// Responses, every other route answers in OpenAI's shape.
    pub fn for_path(path: &str) -> Self {
        let path = path.strip_prefix("/v1").unwrap_or(path);
        if path.starts_with("/messages") {
            Self::Messages
        } else if path == "/responses" || path.starts_with("/responses/") {
            Self::Responses
        } else {
            Self::Chat
        }
    }

    /// Whether errors take OpenAI's shape, `{"error": {"message", "type", "param", "code"}}`
    /// (Chat Completions and Responses), rather than Anthropic's.
    pub fn openai_errors(self) -> bool {
        matches!(self, Self::Chat | Self::Responses)
    }
}

/// What one upstream call does: a generation in a protocol, or one of the auxiliary calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    /// A model answer in `Protocol`'s request and response shapes.
    Generate(Protocol),
    /// OpenAI `POST /embeddings`.
    Embeddings,
    /// Anthropic `POST /v1/messages/count_tokens`.
    CountTokens,
}

impl Operation {
    /// The protocol of this operation's requests, answers and errors.
    pub fn protocol(self) -> Protocol {
        match self {
            Self::Generate(p) => p,
            Self::Embeddings => Protocol::Chat,
            Self::CountTokens => Protocol::Messages,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_speak_their_api_and_everything_else_openai() {
        for path in ["/v1/messages", "/messages", "/v1/messages/count_tokens"] {
            assert_eq!(Protocol::for_path(path), Protocol::Messages, "{path}");
        }
        for path in ["/v1/responses", "/responses"] {
            assert_eq!(Protocol::for_path(path), Protocol::Responses, "{path}");
        }
        for path in ["/v1/chat/completions", "/v1/embeddings", "/key/info", "/nope", "/"] {
            assert_eq!(Protocol::for_path(path), Protocol::Chat, "{path}");
        }
        assert_eq!(Protocol::for_path("/v1/responsesx"), Protocol::Chat);
    }

    #[test]
    fn each_operation_has_one_protocol() {
        assert_eq!(Operation::Generate(Protocol::Messages).protocol(), Protocol::Messages);
        assert_eq!(Operation::Embeddings.protocol(), Protocol::Chat);
        assert_eq!(Operation::CountTokens.protocol(), Protocol::Messages);
    }
}
