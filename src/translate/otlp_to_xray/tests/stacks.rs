//! Stack traces per language (texts as the SDKs record them), chained exceptions and the
//! frame cap.

use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use serde_json::json;

use rand::{Rng, SeedableRng};

use super::*;
use crate::translate::stack::{MAX_FRAMES, StackFormat, detect, parse};

/// The exceptions of a span that recorded one exception event, under `telemetry.sdk.language`.
fn exceptions(language: Option<&str>, exception_type: &str, message: &str, stacktrace: &str) -> Vec<serde_json::Value> {
    let mut failed = child(SpanKind::Internal, vec![]);
    failed.events = vec![exception_event(vec![
        kv("exception.type", string(exception_type)),
        kv("exception.message", string(message)),
        kv("exception.stacktrace", string(stacktrace)),
    ])];
    let resource = language.map(|language| vec![kv("telemetry.sdk.language", string(language))]).unwrap_or_default();
    let doc = document_in(resource, failed);
    doc["cause"]["exceptions"].as_array().cloned().unwrap_or_default()
}

/// The exceptions without their random ids, and with `cause` replaced by the index of the
/// exception it points to, so they can be compared.
fn comparable(exceptions: Vec<serde_json::Value>) -> Vec<serde_json::Value> {
    let ids: Vec<serde_json::Value> = exceptions.iter().map(|e| e["id"].clone()).collect();
    exceptions
        .into_iter()
        .map(|mut exception| {
            if let Some(object) = exception.as_object_mut() {
                object.remove("id");
                if let Some(cause) = object.remove("cause") {
                    let index = ids.iter().position(|id| *id == cause);
                    object.insert("cause_index".to_owned(), json!(index));
                }
            }
            exception
        })
        .collect()
}

const PYTHON_CHAINED: &str = r#"Traceback (most recent call last):
  File "/app/shop/db.py", line 12, in fetch_cart
    return conn.execute("SELECT * FROM carts WHERE id = ?", (cart_id,))
           ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
sqlite3.OperationalError: no such table: carts

The above exception was the direct cause of the following exception:

Traceback (most recent call last):
  File "/usr/lib/python3.11/site-packages/flask/app.py", line 1823, in full_dispatch_request
    rv = self.dispatch_request()
  File "/app/shop/views.py", line 31, in checkout
    cart = fetch_cart(cart_id)
  File "/app/shop/db.py", line 14, in fetch_cart
    raise CartError("cart lookup failed") from e
shop.errors.CartError: cart lookup failed
"#;

#[test]
fn python_frames_most_recent_first_and_chained_cause() {
    let got = exceptions(Some("python"), "shop.errors.CartError", "cart lookup failed", PYTHON_CHAINED);
    assert_eq!(
        comparable(got),
        [
            json!({"type": "shop.errors.CartError", "message": "cart lookup failed", "cause_index": 1, "stack": [
                {"path": "/app/shop/db.py", "line": 14, "label": "fetch_cart"},
                {"path": "/app/shop/views.py", "line": 31, "label": "checkout"},
                {"path": "/usr/lib/python3.11/site-packages/flask/app.py", "line": 1823, "label": "full_dispatch_request"},
            ]}),
            json!({"type": "sqlite3.OperationalError", "message": "no such table: carts", "stack": [
                {"path": "/app/shop/db.py", "line": 12, "label": "fetch_cart"},
            ]}),
        ]
    );
}

#[test]
fn python_exception_raised_while_handling_another() {
    let text = "Traceback (most recent call last):\n  File \"/app/a.py\", line 3, in <module>\n    int('x')\nValueError: invalid literal for int() with base 10: 'x'\n\nDuring handling of the above exception, another exception occurred:\n\nTraceback (most recent call last):\n  File \"/app/a.py\", line 5, in <module>\n    raise RuntimeError('boom')\nRuntimeError: boom\n";
    let got = comparable(exceptions(Some("python"), "RuntimeError", "boom", text));
    assert_eq!(got.len(), 2);
    assert_eq!(got[0]["cause_index"], 1);
    assert_eq!(got[1]["type"], "ValueError");
    assert_eq!(got[1]["message"], "invalid literal for int() with base 10: 'x'");
    assert_eq!(got[1]["stack"], json!([{"path": "/app/a.py", "line": 3, "label": "<module>"}]));
}

const JAVA_CAUSED_BY: &str = "com.example.shop.CheckoutException: checkout failed for cart 7
\tat com.example.shop.CheckoutService.checkout(CheckoutService.java:88)
\tat com.example.shop.CheckoutController.post(CheckoutController.java:41)
\tat java.base/jdk.internal.reflect.DirectMethodHandleAccessor.invoke(DirectMethodHandleAccessor.java:103)
\tat java.base/java.lang.Thread.run(Thread.java:1583)
Caused by: java.sql.SQLTransientConnectionException: HikariPool-1 - Connection is not available,
request timed out after 30000ms.
\tat com.zaxxer.hikari.pool.HikariPool.createTimeoutException(HikariPool.java:696)
\tat com.example.shop.CartRepository.load(CartRepository.java:25)
\t... 2 more
\tSuppressed: java.lang.IllegalStateException: pool closing
\t\tat com.zaxxer.hikari.pool.HikariPool.close(HikariPool.java:300)
Caused by: java.net.SocketTimeoutException: Read timed out
\tat java.base/sun.nio.ch.NioSocketImpl.timedRead(Native Method)
";

#[test]
fn java_frames_and_caused_by_chain() {
    let got =
        exceptions(Some("java"), "com.example.shop.CheckoutException", "checkout failed for cart 7", JAVA_CAUSED_BY);
    assert_eq!(
        comparable(got),
        [
            json!({"type": "com.example.shop.CheckoutException", "message": "checkout failed for cart 7", "cause_index": 1, "stack": [
                {"path": "CheckoutService.java", "line": 88, "label": "com.example.shop.CheckoutService.checkout"},
                {"path": "CheckoutController.java", "line": 41, "label": "com.example.shop.CheckoutController.post"},
                {"path": "DirectMethodHandleAccessor.java", "line": 103, "label": "jdk.internal.reflect.DirectMethodHandleAccessor.invoke"},
                {"path": "Thread.java", "line": 1583, "label": "java.lang.Thread.run"},
            ]}),
            json!({"type": "java.sql.SQLTransientConnectionException", "message": "HikariPool-1 - Connection is not available,\nrequest timed out after 30000ms.", "cause_index": 2, "stack": [
                {"path": "HikariPool.java", "line": 696, "label": "com.zaxxer.hikari.pool.HikariPool.createTimeoutException"},
                {"path": "CartRepository.java", "line": 25, "label": "com.example.shop.CartRepository.load"},
            ]}),
            json!({"type": "java.net.SocketTimeoutException", "message": "Read timed out", "stack": [
                {"path": "Native Method", "label": "sun.nio.ch.NioSocketImpl.timedRead"},
            ]}),
        ]
    );
}

const NODE: &str = "TypeError: Cannot read properties of undefined (reading 'id')
    at getCart (/app/src/cart.js:42:17)
    at async Promise.all (index 0)
    at /app/src/server.js:10:5
    at Layer.handle [as handle_request] (/app/node_modules/express/lib/router/layer.js:95:5)
    at new Promise (<anonymous>)
    at process.processTicksAndRejections (node:internal/process/task_queues:95:5)";

#[test]
fn node_frames() {
    let got = exceptions(Some("nodejs"), "TypeError", "Cannot read properties of undefined (reading 'id')", NODE);
    assert_eq!(
        got[0]["stack"],
        json!([
            {"path": "/app/src/cart.js", "line": 42, "label": "getCart"},
            {"path": "index 0", "label": "async Promise.all"},
            {"path": "/app/src/server.js", "line": 10},
            {"path": "/app/node_modules/express/lib/router/layer.js", "line": 95, "label": "Layer.handle [as handle_request]"},
            {"path": "<anonymous>", "label": "new Promise"},
            {"path": "node:internal/process/task_queues", "line": 95, "label": "process.processTicksAndRejections"},
        ])
    );
}

#[test]
fn javascript_language_name_is_accepted_too() {
    let got = exceptions(Some("javascript"), "TypeError", "x", NODE);
    assert_eq!(got[0]["stack"].as_array().map(Vec::len), Some(6));
}

const GO: &str = "goroutine 1 [running]:
go.opentelemetry.io/otel/sdk/trace.recordStackTrace()
\t/go/pkg/mod/go.opentelemetry.io/otel/sdk@v1.28.0/trace/span.go:408 +0x5d
main.(*CartHandler).ServeHTTP(0xc0000a6000, {0x7f3e, 0xc0000b4000}, 0xc0000c8000)
\t/app/cart.go:42 +0x1d
net/http.serverHandler.ServeHTTP({0xc0001b2000?}, {0x7f3e, 0xc0000b4000}, 0xc0000c8000)
\t/usr/local/go/src/net/http/server.go:3142 +0x8e
created by net/http.(*Server).Serve in goroutine 1
\t/usr/local/go/src/net/http/server.go:3285 +0x4b4
";

#[test]
fn go_frames() {
    let got = exceptions(Some("go"), "*errors.errorString", "cart not found", GO);
    assert_eq!(
        got[0]["stack"],
        json!([
            {"path": "/go/pkg/mod/go.opentelemetry.io/otel/sdk@v1.28.0/trace/span.go", "line": 408, "label": "go.opentelemetry.io/otel/sdk/trace.recordStackTrace"},
            {"path": "/app/cart.go", "line": 42, "label": "main.(*CartHandler).ServeHTTP"},
            {"path": "/usr/local/go/src/net/http/server.go", "line": 3142, "label": "net/http.serverHandler.ServeHTTP"},
            {"path": "/usr/local/go/src/net/http/server.go", "line": 3285, "label": "net/http.(*Server).Serve"},
        ])
    );
}

const DOTNET_INNER: &str = "System.InvalidOperationException: Checkout failed
 ---> System.Net.Http.HttpRequestException: Connection refused (payments:443)
   at System.Net.Http.HttpConnectionPool.ConnectToTcpHostAsync(String host, Int32 port, CancellationToken cancellationToken)
   at Shop.Payments.PaymentClient.ChargeAsync(Cart cart) in /src/Shop/Payments/PaymentClient.cs:line 57
   --- End of inner exception stack trace ---
   at Shop.Checkout.CheckoutService.CheckoutAsync(Int32 cartId) in /src/Shop/Checkout/CheckoutService.cs:line 31
--- End of stack trace from previous location ---
   at Shop.Api.Controllers.CartController.Post(Int32 id) in C:\\src\\Shop.Api\\Controllers\\CartController.cs:line 22";

#[test]
fn dotnet_frames_and_inner_exception() {
    let got = exceptions(Some("dotnet"), "System.InvalidOperationException", "Checkout failed", DOTNET_INNER);
    assert_eq!(
        comparable(got),
        [
            json!({"type": "System.InvalidOperationException", "message": "Checkout failed", "cause_index": 1, "stack": [
                {"path": "/src/Shop/Checkout/CheckoutService.cs", "line": 31, "label": "Shop.Checkout.CheckoutService.CheckoutAsync(Int32 cartId)"},
                {"path": "C:\\src\\Shop.Api\\Controllers\\CartController.cs", "line": 22, "label": "Shop.Api.Controllers.CartController.Post(Int32 id)"},
            ]}),
            json!({"type": "System.Net.Http.HttpRequestException", "message": "Connection refused (payments:443)", "stack": [
                {"label": "System.Net.Http.HttpConnectionPool.ConnectToTcpHostAsync(String host, Int32 port, CancellationToken cancellationToken)"},
                {"path": "/src/Shop/Payments/PaymentClient.cs", "line": 57, "label": "Shop.Payments.PaymentClient.ChargeAsync(Cart cart)"},
            ]}),
        ]
    );
}

#[test]
fn unknown_language_is_detected_from_the_text() {
    let cases = [
        (PYTHON_CHAINED, StackFormat::Python),
        (JAVA_CAUSED_BY, StackFormat::Java),
        (NODE, StackFormat::JavaScript),
        (GO, StackFormat::Go),
        (DOTNET_INNER, StackFormat::DotNet),
        ("just a message", StackFormat::Unknown),
    ];
    for (text, format) in cases {
        assert_eq!(detect(text), format, "{text}");
        assert_eq!(StackFormat::for_language(Some("rust"), text), format);
        assert_eq!(StackFormat::for_language(None, text), format);
    }
}

#[test]
fn stack_without_language_is_parsed_by_the_detected_format() {
    let got = exceptions(
        None,
        "java.lang.IllegalStateException",
        "x",
        "java.lang.IllegalStateException: x\n\tat a.B.c(B.java:1)\n",
    );
    assert_eq!(got[0]["stack"], json!([{"path": "B.java", "line": 1, "label": "a.B.c"}]));
}

#[test]
fn wrong_language_falls_back_to_detection() {
    let got = exceptions(Some("python"), "TypeError", "x", NODE);
    assert_eq!(got[0]["stack"].as_array().map(Vec::len), Some(6));
}

#[test]
fn frames_beyond_the_cap_are_counted_as_truncated() {
    let mut text = String::from("java.lang.StackOverflowError\n");
    for depth in 0..(MAX_FRAMES + 25) {
        text.push_str(&format!("\tat com.example.Recursion.down(Recursion.java:{depth})\n"));
    }
    let got = exceptions(Some("java"), "java.lang.StackOverflowError", "", &text);
    assert_eq!(got[0]["stack"].as_array().map(Vec::len), Some(MAX_FRAMES));
    assert_eq!(got[0]["truncated"], 25);
    assert_eq!(got[0]["stack"][0]["line"], 0, "the innermost frames are the ones kept");
}

#[test]
fn stack_in_the_x_ray_rendering_is_read_back() {
    let mut failed = child(SpanKind::Internal, vec![]);
    failed.events = vec![exception_event(vec![
        kv("aws.xray.exception.id", string("6e5d4c3b2a190807")),
        kv("exception.type", string("PaymentError")),
        kv(
            "exception.stacktrace",
            string(
                "PaymentError: down\n\tat charge(/app/checkout.py: 88)\n\tat net/http.Serve(C:\\go\\server.go: <unknown>)\n",
            ),
        ),
    ])];
    let doc = document_in(vec![kv("telemetry.sdk.language", string("python"))], failed);
    assert_eq!(
        doc["cause"]["exceptions"][0]["stack"],
        json!([
            {"path": "/app/checkout.py", "line": 88, "label": "charge"},
            {"path": "C:\\go\\server.go", "label": "net/http.Serve"},
        ])
    );
}

#[test]
fn garbage_stack_text_gives_no_frames_and_no_panic() {
    let texts =
        ["", "\n\n", "(((", ")", "\tat ()", "  File \"", "    at :::", "   at  in :line x", "\t:\n", "Caused by: "];
    for text in texts {
        for language in ["java", "python", "nodejs", "go", "dotnet", "other"] {
            let got = exceptions(Some(language), "E", "m", text);
            assert!(!got.is_empty(), "{language} {text:?}");
        }
    }
}

#[test]
fn random_stack_text_never_panics_in_any_parser() {
    let pieces = [
        "\n",
        "\t",
        " ",
        "   ",
        "    ",
        "at ",
        "\tat ",
        "  File \"",
        "\", line ",
        ", in ",
        "(",
        ")",
        ":",
        ":line ",
        "--->",
        "--- End of inner exception stack trace ---",
        "Caused by: ",
        "goroutine ",
        "created by ",
        " +0x",
        "12",
        "é",
        "🚀",
        "The above exception was the direct cause of the following exception:",
        "\r\n",
        "<unknown>",
        "[",
        "]",
    ];
    let formats = [
        StackFormat::Java,
        StackFormat::XrayRendering,
        StackFormat::Python,
        StackFormat::JavaScript,
        StackFormat::DotNet,
        StackFormat::Go,
        StackFormat::Unknown,
    ];
    let mut rng = rand::rngs::StdRng::seed_from_u64(5);
    for _ in 0..3_000 {
        let length = rng.random_range(0..40);
        let text: String = (0..length).map(|_| pieces[rng.random_range(0..pieces.len())]).collect();
        for format in formats {
            let chain = parse(format, &text);
            assert!(!chain.is_empty(), "{format:?} {text:?}");
            assert!(chain.iter().all(|exception| exception.frames.len() <= MAX_FRAMES));
        }
    }
}
