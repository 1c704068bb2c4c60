//! One line of text for an error and its causes, for logs and `/status` ("request failed:
//! error trying to connect: Connection refused"), without repeating a cause an outer error
//! already quotes.

use std::error::Error;

/// `outer: inner: innermost`.
pub(crate) fn chain(error: &dyn Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    #[derive(Debug, thiserror::Error)]
    #[error("request failed")]
    struct Outer(#[source] std::io::Error);

    #[derive(Debug, thiserror::Error)]
    #[error("request failed: {0}")]
    struct Quoting(#[source] std::io::Error);

    #[test]
    fn causes_follow_the_error() {
        let error = Outer(std::io::Error::other("connection refused"));
        assert_eq!(super::chain(&error), "request failed: connection refused");
    }

    #[test]
    fn a_cause_already_quoted_is_not_repeated() {
        let error = Quoting(std::io::Error::other("connection refused"));
        assert_eq!(super::chain(&error), "request failed: connection refused");
    }
}
