//! A panic is a bug, never a reaction to bad input: arbitrary bytes and arbitrary JSON go into
//! every decoder, which must answer `Ok` or `Err` and nothing else.

use confab_proto::{ClientMessage, CtlMessage, MeetingLink, ServerMessage, SyncFrame};
use proptest::prelude::*;
use serde_json::{Map, Value};

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        ".{0,40}".prop_map(Value::String),
        // Strings that look like the ids and values the decoders care about.
        "[A-Za-z0-9_-]{20,24}".prop_map(Value::String),
        prop_oneof![Just("offer"), Just("answer"), Just("browser"), Just("1")]
            .prop_map(|s| Value::String(s.into())),
    ];
    leaf.prop_recursive(6, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            prop::collection::btree_map(field_name(), inner, 0..8)
                .prop_map(|m| Value::Object(m.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

fn field_name() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "type",
            "v",
            "room",
            "name",
            "client",
            "app_version",
            "token",
            "to",
            "from",
            "data",
            "sdp",
            "candidate",
            "sdpMid",
            "sdpMLineIndex",
            "peer_id",
            "fp_mac",
            "want_snapshot",
            "size",
            "id",
            "you",
            "peers",
            "limits",
            "code",
            "message",
        ])
        .prop_map(String::from),
        "[a-z_]{1,12}",
    ]
}

/// An object whose `type` is one the decoders know, with arbitrary other fields.
fn typed_message() -> impl Strategy<Value = Value> {
    let ty = prop::sample::select(vec![
        "join",
        "signal",
        "leave",
        "welcome",
        "peer_joined",
        "peer_left",
        "error",
        "hello",
        "media",
        "file_offer",
        "file_accept",
        "file_cancel",
        "file_done",
        "bye",
    ]);
    (ty, prop::collection::btree_map(field_name(), json_value(), 0..8)).prop_map(|(ty, fields)| {
        let mut m: Map<String, Value> = fields.into_iter().collect();
        m.insert("type".into(), Value::String(ty.into()));
        Value::Object(m)
    })
}

fn decode_everything(text: &str) {
    let _ = ClientMessage::decode(text);
    let _ = ServerMessage::decode(text);
    let _ = CtlMessage::decode(text);
    let _ = text.parse::<MeetingLink>();
    let _ = SyncFrame::decode(text.as_bytes());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = SyncFrame::decode(&bytes);
        decode_everything(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn arbitrary_json_never_panics(value in json_value()) {
        decode_everything(&value.to_string());
    }

    #[test]
    fn known_types_with_arbitrary_fields_never_panic(value in typed_message()) {
        let text = value.to_string();
        decode_everything(&text);
        // Whatever decodes must encode to something that decodes to the same message.
        if let Ok(msg) = ClientMessage::decode(&text) {
            prop_assert_eq!(ClientMessage::decode(&msg.encode()), Ok(msg));
        }
        if let Ok(msg) = ServerMessage::decode(&text) {
            prop_assert_eq!(ServerMessage::decode(&msg.encode()), Ok(msg));
        }
    }

    #[test]
    fn arbitrary_link_like_strings_never_panic(
        scheme in prop::sample::select(vec!["http://", "https://", "confab://", "", "ws://"]),
        rest in "[ -~]{0,80}",
    ) {
        let _ = format!("{scheme}{rest}").parse::<MeetingLink>();
        let _ = format!("{scheme}h/m/{rest}").parse::<MeetingLink>();
    }
}
