//! What a participant types on stdin: `/say text` and friends for people, one JSON object per
//! line with `--json`. Parsing is pure, so every form is unit-tested.

/// One command for the meeting: the engine's own front-end API.
pub use confab_core::api::Command;

/// A JSON command line: the command, and the `ref` it carried (echoed in the answer, so a script
/// can tell which command was applied).
#[derive(Debug, Clone, PartialEq)]
pub struct JsonLine {
    pub command: Command,
    pub reference: Option<serde_json::Value>,
}

/// Parses one `--json` line. The `ref` field may accompany any command.
pub fn parse_json(line: &str) -> Result<JsonLine, String> {
    let mut value: serde_json::Value =
        serde_json::from_str(line).map_err(|e| format!("not a JSON object: {e}"))?;
    let object = value.as_object_mut().ok_or("a command is a JSON object with \"cmd\"")?;
    let reference = object.remove("ref");
    if !object.contains_key("cmd") {
        return Err("the command has no \"cmd\" field".into());
    }
    let command = serde_json::from_value(value).map_err(|e| format!("bad command: {e}"))?;
    Ok(JsonLine { command, reference })
}

pub const HUMAN_HELP: &str = "\
commands: /say TEXT (or just TEXT), /notes, /note TEXT (append a line to the notes),
          /title TEXT, /send PATH, /export PATH, /quit, /help";

/// Parses one line a person typed. Text without a leading `/` is said in the chat.
pub fn parse_human(line: &str) -> Result<Option<Command>, String> {
    let line = line.trim_end_matches(['\r', '\n']);
    if line.trim().is_empty() {
        return Ok(None);
    }
    let Some(rest) = line.strip_prefix('/') else {
        return Ok(Some(Command::Say { text: line.to_owned() }));
    };
    let (word, arg) = rest.split_once(' ').unwrap_or((rest, ""));
    let need = |what: &str| {
        if arg.trim().is_empty() {
            Err(format!("/{word} needs {what}"))
        } else {
            Ok(arg.to_owned())
        }
    };
    Ok(Some(match word {
        "say" => Command::Say { text: need("some text")? },
        "notes" => Command::Notes {},
        "note" => Command::NotesAppend { text: format!("{}\n", need("some text")?) },
        "title" => Command::Title { text: need("a title")? },
        "send" => Command::SendFile { path: need("a file path")?.trim().into() },
        "export" => Command::Export { path: need("a file path")?.trim().into() },
        "quit" | "exit" => Command::Quit {},
        "help" => return Err(HUMAN_HELP.to_owned()),
        other => return Err(format!("unknown command /{other}\n{HUMAN_HELP}")),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use confab_core::api::NotesSelection;

    #[test]
    fn json_commands_as_the_issue_spells_them() {
        let cases = [
            (r#"{"cmd":"say","text":"hi"}"#, Command::Say { text: "hi".into() }),
            (
                r#"{"cmd":"notes_insert","pos":3,"text":"x"}"#,
                Command::NotesInsert { pos: 3, text: "x".into() },
            ),
            (r#"{"cmd":"notes_delete","pos":0,"len":2}"#, Command::NotesDelete { pos: 0, len: 2 }),
            (
                r#"{"cmd":"cursor","selection":{"anchor":1,"head":4}}"#,
                Command::Cursor { selection: Some(NotesSelection { anchor: 1, head: 4 }) },
            ),
            (r#"{"cmd":"cursor","selection":null}"#, Command::Cursor { selection: None }),
            (
                r#"{"cmd":"send_file","path":"/tmp/a b"}"#,
                Command::SendFile { path: "/tmp/a b".into() },
            ),
            (r#"{"cmd":"export","path":"out.md"}"#, Command::Export { path: "out.md".into() }),
            (r#"{"cmd":"quit"}"#, Command::Quit {}),
            (r#"{"cmd":"notes"}"#, Command::Notes {}),
        ];
        for (line, want) in cases {
            assert_eq!(parse_json(line).unwrap(), JsonLine { command: want, reference: None });
        }
        let with_ref = parse_json(r#"{"cmd":"say","text":"hi","ref":7}"#).unwrap();
        assert_eq!(with_ref.reference, Some(serde_json::json!(7)));
    }

    #[test]
    fn bad_json_commands_say_what_is_wrong() {
        let cases = [
            ("", "not a JSON object"),
            ("[1]", "JSON object"),
            (r#"{"text":"hi"}"#, "no \"cmd\""),
            (r#"{"cmd":"dance"}"#, "bad command"),
            (r#"{"cmd":"say"}"#, "bad command"),
            (r#"{"cmd":"notes_insert","pos":-1,"text":"x"}"#, "bad command"),
            (r#"{"cmd":"say","text":"hi","extra":1}"#, "bad command"),
        ];
        for (line, want) in cases {
            let err = parse_json(line).unwrap_err();
            assert!(err.contains(want), "{line}: {err}");
        }
    }

    #[test]
    fn people_type_slash_commands_or_just_talk() {
        assert_eq!(
            parse_human("hello there").unwrap(),
            Some(Command::Say { text: "hello there".into() })
        );
        assert_eq!(
            parse_human("/say  spaced").unwrap(),
            Some(Command::Say { text: " spaced".into() })
        );
        assert_eq!(parse_human("/notes").unwrap(), Some(Command::Notes {}));
        assert_eq!(
            parse_human("/note buy milk").unwrap(),
            Some(Command::NotesAppend { text: "buy milk\n".into() })
        );
        assert_eq!(
            parse_human("/send ./a.txt").unwrap(),
            Some(Command::SendFile { path: "./a.txt".into() })
        );
        assert_eq!(
            parse_human("/export out.md").unwrap(),
            Some(Command::Export { path: "out.md".into() })
        );
        assert_eq!(parse_human("/quit").unwrap(), Some(Command::Quit {}));
        assert_eq!(parse_human("   ").unwrap(), None);
        assert!(parse_human("/send").unwrap_err().contains("needs a file path"));
        assert!(parse_human("/frobnicate").unwrap_err().contains("unknown command"));
    }
}
