//! The subset of Go's `text/template` that alert labels and annotations use: text and
//! `{{ }}` actions (with `{{-`/`-}}` trimming and comments), variables (`$labels`, `$value`,
//! `$externalLabels`, `$externalURL`, `$x := …`), fields (`$labels.job`, `.Value`),
//! pipelines, `if`/`else if`/`else`/`end`, `range $k, $v := …`, and Prometheus' functions
//! (`humanize*`, `printf`, `title`, `toUpper`, `toLower`, `reReplaceAll`, `match`,
//! comparisons, `and`/`or`/`not`, `len`, `index`). Parsing and execution are iterative or
//! bounded by the template's length.

use std::collections::BTreeMap;

/// A value inside a template.
#[derive(Debug, Clone, PartialEq)]
pub enum Val {
    Nil,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Map(BTreeMap<String, String>),
    Obj(BTreeMap<String, Val>),
    /// Query results: a list of `{Labels, Value}` objects.
    List(Vec<Val>),
}

impl Val {
    fn truthy(&self) -> bool {
        match self {
            Val::Nil => false,
            Val::Bool(b) => *b,
            Val::Int(i) => *i != 0,
            Val::Float(f) => *f != 0.0,
            Val::Str(s) => !s.is_empty(),
            Val::Map(m) => !m.is_empty(),
            Val::Obj(m) => !m.is_empty(),
            Val::List(l) => !l.is_empty(),
        }
    }

    /// Go's `%v`.
    fn print(&self) -> String {
        match self {
            Val::Nil => "<no value>".into(),
            Val::Bool(b) => b.to_string(),
            Val::Int(i) => i.to_string(),
            Val::Float(f) => model::exposition::float_to_string(*f),
            Val::Str(s) => s.clone(),
            Val::Map(m) => {
                let items: Vec<String> = m.iter().map(|(k, v)| format!("{k}:{v}")).collect();
                format!("map[{}]", items.join(" "))
            }
            Val::Obj(m) => {
                let items: Vec<String> = m
                    .iter()
                    .map(|(k, v)| format!("{k}:{}", v.print()))
                    .collect();
                format!("map[{}]", items.join(" "))
            }
            Val::List(l) => {
                let items: Vec<String> = l.iter().map(Val::print).collect();
                format!("[{}]", items.join(" "))
            }
        }
    }

    fn to_float(&self) -> Result<f64, String> {
        match self {
            Val::Float(f) => Ok(*f),
            Val::Int(i) => Ok(*i as f64),
            Val::Str(s) => s
                .trim()
                .parse::<f64>()
                .or_else(|_| parse_go_special(s.trim()).ok_or(()))
                .map_err(|_| format!("strconv.ParseFloat: parsing {s:?}: invalid syntax")),
            other => Err(format!("can't convert {} to float", other.print())),
        }
    }
}

fn parse_go_special(s: &str) -> Option<f64> {
    match s.to_ascii_lowercase().as_str() {
        "inf" | "+inf" => Some(f64::INFINITY),
        "-inf" => Some(f64::NEG_INFINITY),
        "nan" => Some(f64::NAN),
        _ => None,
    }
}

/// Runs a PromQL instant query for the `query` template function: the result as
/// `(labels, value)` pairs.
pub type QueryFn<'a> = dyn Fn(&str) -> QueryRows + 'a;

/// What a template query returns: `(labels, value)` rows, or the error message.
pub type QueryRows = Result<Vec<(BTreeMap<String, String>, f64)>, String>;

/// What execution carries besides the dot: variables and the query hook.
struct Env<'q> {
    vars: Vec<(String, Val)>,
    query: Option<&'q QueryFn<'q>>,
    external_url: String,
}

/// The data an alert template sees.
#[derive(Debug, Clone, Default)]
pub struct TemplateData {
    pub labels: BTreeMap<String, String>,
    pub external_labels: BTreeMap<String, String>,
    pub external_url: String,
    pub value: f64,
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Var(String),
    /// `.a.b` following an operand, or `.a` alone (on the dot).
    Field(String),
    Dot,
    Ident(String),
    Str(String),
    Num(f64),
    Int(i64),
    LParen,
    RParen,
    Pipe,
    Declare,
    Assign,
    Comma,
}

#[derive(Debug, Clone, PartialEq)]
enum Operand {
    Var(String, Vec<String>),
    Dot(Vec<String>),
    Lit(Val),
    Func(String),
    Sub(Box<Pipeline>, Vec<String>),
}

type Command = Vec<Operand>;

#[derive(Debug, Clone, PartialEq)]
struct Pipeline {
    decl: Vec<String>,
    cmds: Vec<Command>,
}

#[derive(Debug, Clone, PartialEq)]
enum Node {
    Text(String),
    Action(Pipeline),
    If {
        branches: Vec<(Pipeline, Vec<Node>)>,
        otherwise: Vec<Node>,
    },
    /// `{{ template "name" pipeline }}`.
    Call(String, Option<Pipeline>),
    /// `break`/`continue`: accepted by the parser, an error when executed.
    Unsupported(&'static str),
    /// `range`, or `with` when `with` is set (the body runs once with the value as dot).
    Range {
        pipe: Pipeline,
        body: Vec<Node>,
        otherwise: Vec<Node>,
        with: bool,
    },
}

/// A parsed template.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    nodes: Vec<Node>,
    /// `{{ define "name" }}` blocks.
    defines: BTreeMap<String, Vec<Node>>,
}

const FUNCS: &[&str] = &[
    "humanize",
    "humanize1024",
    "humanizeDuration",
    "humanizePercentage",
    "humanizeTimestamp",
    "printf",
    "print",
    "title",
    "toUpper",
    "toLower",
    "reReplaceAll",
    "match",
    "eq",
    "ne",
    "lt",
    "le",
    "gt",
    "ge",
    "and",
    "or",
    "not",
    "len",
    "index",
    "stripPort",
    "safeHtml",
    "html",
    "js",
    "urlquery",
    "query",
    "first",
    "value",
    "label",
    "strvalue",
    "sortByLabel",
    "args",
    "tableLink",
    "graphLink",
    "externalURL",
    "pathPrefix",
    "parseDuration",
    "stripDomain",
    "println",
    "toTime",
    "toDuration",
    "slice",
    "call",
];

/// Deepest nesting of parenthesised pipelines.
const MAX_PAREN_DEPTH: usize = 100;

const BUILTIN_VARS: &[&str] = &["$", "$labels", "$externalLabels", "$externalURL", "$value"];

enum Frame {
    Define(String),
    If {
        branches: Vec<(Pipeline, Vec<Node>)>,
        in_else: bool,
        otherwise: Vec<Node>,
    },
    Range {
        pipe: Pipeline,
        body: Vec<Node>,
        in_else: bool,
        otherwise: Vec<Node>,
        with: bool,
    },
}

impl Template {
    /// Parses `text`; the error message follows Go's wording where it matters.
    pub fn parse(text: &str) -> Result<Template, String> {
        let mut stack: Vec<(Frame, Vec<Node>, usize)> = Vec::new();
        let mut defines = BTreeMap::new();
        let mut cur: Vec<Node> = Vec::new();
        let mut vars: Vec<String> = BUILTIN_VARS.iter().map(|s| (*s).to_owned()).collect();
        let mut rest = text;
        let mut trim_next = false;
        let mut line = 1usize;
        loop {
            let Some(open) = rest.find("{{") else {
                let mut t = rest;
                if trim_next {
                    t = t.trim_start();
                }
                if !t.is_empty() {
                    cur.push(Node::Text(t.to_owned()));
                }
                break;
            };
            let mut t = &rest[..open];
            line += t.matches('\n').count();
            if trim_next {
                t = t.trim_start();
            }
            let after = &rest[open + 2..];
            let trim_left =
                after.starts_with("- ") || after.starts_with("-\t") || after.starts_with("-\n");
            if trim_left {
                t = t.trim_end();
            }
            if !t.is_empty() {
                cur.push(Node::Text(t.to_owned()));
            }
            let body_start = if trim_left { &after[1..] } else { after };
            let close = find_close(body_start).ok_or_else(|| format!("{line}: unclosed action"))?;
            let mut inner = &body_start[..close];
            trim_next = false;
            if inner.ends_with(" -") || inner.ends_with("\t-") || inner.ends_with("\n-") {
                inner = &inner[..inner.len() - 1];
                trim_next = true;
            }
            line += inner.matches('\n').count();
            rest = &body_start[close + 2..];
            let inner = inner.trim();
            if inner.starts_with("/*") {
                if !inner.ends_with("*/") {
                    return Err(format!("{line}: unclosed comment"));
                }
                continue;
            }
            let toks = lex(inner).map_err(|e| format!("{line}: {e}"))?;
            let keyword = match toks.first() {
                Some(Tok::Ident(k))
                    if [
                        "if", "else", "end", "range", "with", "define", "template", "block",
                        "break", "continue",
                    ]
                    .contains(&k.as_str()) =>
                {
                    Some(k.clone())
                }
                _ => None,
            };
            match keyword.as_deref() {
                Some("define") => {
                    let (Some(Tok::Str(name)), 2) = (toks.get(1), toks.len()) else {
                        return Err(format!("{line}: unexpected token in define clause"));
                    };
                    if !stack.is_empty() {
                        return Err(format!("{line}: unexpected <define> in command"));
                    }
                    stack.push((
                        Frame::Define(name.clone()),
                        std::mem::take(&mut cur),
                        vars.len(),
                    ));
                }
                Some(kw @ ("template" | "block")) => {
                    let Some(Tok::Str(name)) = toks.get(1) else {
                        return Err(format!("{line}: unexpected token in template clause"));
                    };
                    let pipe = if toks.len() > 2 {
                        Some(
                            parse_pipeline(&toks[2..], &mut vars)
                                .map_err(|e| format!("{line}: {e}"))?,
                        )
                    } else {
                        None
                    };
                    cur.push(Node::Call(name.clone(), pipe));
                    if kw == "block" {
                        // `block` calls the template and defines it, up to its `end`.
                        stack.push((
                            Frame::Define(name.clone()),
                            std::mem::take(&mut cur),
                            vars.len(),
                        ));
                    }
                }
                Some(kw @ ("break" | "continue")) => {
                    let in_range = stack
                        .iter()
                        .any(|(f, _, _)| matches!(f, Frame::Range { with: false, .. }));
                    if !in_range || toks.len() > 1 {
                        return Err(format!("{line}: {{{{{kw}}}}} outside {{{{range}}}}"));
                    }
                    cur.push(Node::Unsupported(if kw == "break" {
                        "break"
                    } else {
                        "continue"
                    }));
                }
                Some("if") => {
                    let mark = vars.len();
                    let pipe = parse_pipeline(&toks[1..], &mut vars)
                        .map_err(|e| format!("{line}: {e}"))?;
                    stack.push((
                        Frame::If {
                            branches: vec![(pipe, Vec::new())],
                            in_else: false,
                            otherwise: Vec::new(),
                        },
                        std::mem::take(&mut cur),
                        mark,
                    ));
                }
                Some(kw @ ("range" | "with")) => {
                    let with = kw == "with";
                    let mark = vars.len();
                    let pipe = parse_pipeline(&toks[1..], &mut vars)
                        .map_err(|e| format!("{line}: {e}"))?;
                    stack.push((
                        Frame::Range {
                            pipe,
                            body: Vec::new(),
                            in_else: false,
                            otherwise: Vec::new(),
                            with,
                        },
                        std::mem::take(&mut cur),
                        mark,
                    ));
                }
                Some("else") => {
                    let Some((frame, _, _)) = stack.last_mut() else {
                        return Err(format!("{line}: unexpected {{{{else}}}}"));
                    };
                    let nodes = std::mem::take(&mut cur);
                    match frame {
                        Frame::If {
                            branches,
                            in_else,
                            otherwise,
                        } => {
                            if *in_else {
                                return Err(format!("{line}: expected end; found {{{{else}}}}"));
                            }
                            if let Some(last) = branches.last_mut() {
                                last.1 = nodes;
                            }
                            if matches!(toks.get(1), Some(Tok::Ident(k)) if k == "if") {
                                let pipe = parse_pipeline(&toks[2..], &mut vars)
                                    .map_err(|e| format!("{line}: {e}"))?;
                                branches.push((pipe, Vec::new()));
                            } else if toks.len() > 1 {
                                return Err(format!("{line}: unexpected token in else"));
                            } else {
                                *in_else = true;
                                let _ = otherwise;
                            }
                        }
                        Frame::Define(_) => {
                            return Err(format!("{line}: unexpected {{{{else}}}}"));
                        }
                        Frame::Range { body, in_else, .. } => {
                            if *in_else || toks.len() > 1 {
                                return Err(format!("{line}: unexpected {{{{else}}}}"));
                            }
                            *body = nodes;
                            *in_else = true;
                        }
                    }
                }
                Some("end") => {
                    if toks.len() > 1 {
                        return Err(format!("{line}: unexpected token in end"));
                    }
                    let Some((frame, parent, mark)) = stack.pop() else {
                        return Err(format!("{line}: unexpected {{{{end}}}}"));
                    };
                    vars.truncate(mark);
                    let nodes = std::mem::replace(&mut cur, parent);
                    let node = match frame {
                        Frame::Define(name) => {
                            defines.insert(name, nodes);
                            continue;
                        }
                        Frame::If {
                            mut branches,
                            in_else,
                            mut otherwise,
                        } => {
                            if in_else {
                                otherwise = nodes;
                            } else if let Some(last) = branches.last_mut() {
                                last.1 = nodes;
                            }
                            Node::If {
                                branches,
                                otherwise,
                            }
                        }
                        Frame::Range {
                            pipe,
                            mut body,
                            in_else,
                            mut otherwise,
                            with,
                        } => {
                            if in_else {
                                otherwise = nodes;
                            } else {
                                body = nodes;
                            }
                            Node::Range {
                                pipe,
                                body,
                                otherwise,
                                with,
                            }
                        }
                    };
                    cur.push(node);
                }
                _ => {
                    if toks.is_empty() {
                        return Err(format!("{line}: missing value for command"));
                    }
                    let pipe =
                        parse_pipeline(&toks, &mut vars).map_err(|e| format!("{line}: {e}"))?;
                    cur.push(Node::Action(pipe));
                }
            }
        }
        if !stack.is_empty() {
            return Err(format!("{line}: unexpected EOF"));
        }
        Ok(Template {
            nodes: cur,
            defines,
        })
    }

    /// Runs the template over `data`.
    pub fn execute(&self, data: &TemplateData) -> Result<String, String> {
        self.execute_with(data, None)
    }

    /// Runs the template with a `query` function.
    pub fn execute_with(
        &self,
        data: &TemplateData,
        query: Option<&QueryFn<'_>>,
    ) -> Result<String, String> {
        let mut dot = BTreeMap::new();
        dot.insert("Labels".to_owned(), Val::Map(data.labels.clone()));
        dot.insert(
            "ExternalLabels".to_owned(),
            Val::Map(data.external_labels.clone()),
        );
        dot.insert(
            "ExternalURL".to_owned(),
            Val::Str(data.external_url.clone()),
        );
        dot.insert("Value".to_owned(), Val::Float(data.value));
        let dot = Val::Obj(dot);
        let vars: Vec<(String, Val)> = vec![
            ("$".into(), dot.clone()),
            ("$labels".into(), Val::Map(data.labels.clone())),
            (
                "$externalLabels".into(),
                Val::Map(data.external_labels.clone()),
            ),
            ("$externalURL".into(), Val::Str(data.external_url.clone())),
            ("$value".into(), Val::Float(data.value)),
        ];
        let mut env = Env {
            vars,
            query,
            external_url: data.external_url.clone(),
        };
        let vars = &mut env;
        let mut out = String::new();
        // Explicit work stack: (nodes, index, dot, variable-scope depth).
        let mut work: Vec<Frame2<'_>> = vec![(&self.nodes, 0, dot, vars.vars.len(), Vec::new())];
        let mut steps = 0usize;
        while let Some((nodes, idx, dot, depth, binds)) = work.pop() {
            vars.vars.extend(binds);
            steps += 1;
            if steps > 1_000_000 || out.len() > 1 << 20 {
                return Err("template output too large".into());
            }
            let Some(node) = nodes.get(idx) else {
                vars.vars.truncate(depth);
                continue;
            };
            work.push((nodes, idx + 1, dot.clone(), depth, Vec::new()));
            match node {
                Node::Text(t) => out.push_str(t),
                Node::Unsupported(what) => return Err(format!("{{{{{what}}}}} is not supported")),
                Node::Call(name, pipe) => {
                    let Some(nodes) = self.defines.get(name) else {
                        return Err(format!("no such template {name:?}"));
                    };
                    let dot = match pipe {
                        Some(p) => eval_pipeline(p, &dot, vars)?,
                        None => Val::Nil,
                    };
                    if work.len() > 10_000 {
                        return Err("exceeded maximum template depth".into());
                    }
                    work.push((nodes, 0, dot, vars.vars.len(), Vec::new()));
                }
                Node::Action(p) => {
                    let v = eval_pipeline(p, &dot, vars)?;
                    if p.decl.is_empty() {
                        out.push_str(&v.print());
                    }
                }
                Node::If {
                    branches,
                    otherwise,
                } => {
                    let mut chosen: &[Node] = otherwise;
                    for (cond, body) in branches {
                        if eval_pipeline(cond, &dot, vars)?.truthy() {
                            chosen = body;
                            break;
                        }
                    }
                    work.push((chosen, 0, dot.clone(), vars.vars.len(), Vec::new()));
                }
                Node::Range {
                    pipe,
                    body,
                    otherwise,
                    with: true,
                } => {
                    let inner = Pipeline {
                        decl: Vec::new(),
                        cmds: pipe.cmds.clone(),
                    };
                    let v = eval_pipeline(&inner, &dot, vars)?;
                    if v.truthy() {
                        let binds = pipe.decl.iter().map(|n| (n.clone(), v.clone())).collect();
                        work.push((body, 0, v, vars.vars.len(), binds));
                    } else {
                        work.push((otherwise, 0, dot.clone(), vars.vars.len(), Vec::new()));
                    }
                }
                Node::Range {
                    pipe,
                    body,
                    otherwise,
                    with: false,
                } => {
                    let inner = Pipeline {
                        decl: Vec::new(),
                        cmds: pipe.cmds.clone(),
                    };
                    let v = eval_pipeline(&inner, &dot, vars)?;
                    let items: Vec<(Val, Val)> = match v {
                        Val::Map(m) => m
                            .into_iter()
                            .map(|(k, v)| (Val::Str(k), Val::Str(v)))
                            .collect(),
                        Val::Obj(m) => m.into_iter().map(|(k, v)| (Val::Str(k), v)).collect(),
                        Val::Nil => Vec::new(),
                        Val::List(l) => l
                            .into_iter()
                            .enumerate()
                            .map(|(i, v)| (Val::Int(i as i64), v))
                            .collect(),
                        Val::Int(n) => (0..n.clamp(0, 10_000))
                            .map(|i| (Val::Int(i), Val::Int(i)))
                            .collect(),
                        other => return Err(format!("range can't iterate over {}", other.print())),
                    };
                    if items.is_empty() {
                        work.push((otherwise, 0, dot.clone(), vars.vars.len(), Vec::new()));
                    } else {
                        // Push in reverse so the first item runs first.
                        let base = vars.vars.len();
                        for (k, v) in items.into_iter().rev() {
                            let binds = match pipe.decl.as_slice() {
                                [one] => vec![(one.clone(), v.clone())],
                                [key, value] => {
                                    vec![(key.clone(), k), (value.clone(), v.clone())]
                                }
                                _ => Vec::new(),
                            };
                            work.push((body, 0, v, base, binds));
                        }
                    }
                }
            }
        }
        Ok(out)
    }
}

/// One unit of execution work: nodes, next index, dot, variable depth to restore at the
/// end, variables to bind at the start.
type Frame2<'a> = (&'a [Node], usize, Val, usize, Vec<(String, Val)>);

fn find_close(s: &str) -> Option<usize> {
    // Skip over quoted strings so `}}` inside them does not end the action.
    let b = s.as_bytes();
    let mut i = 0;
    while i + 1 < b.len() {
        match b[i] {
            b'"' => {
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    if b[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
            }
            b'`' => {
                i += 1;
                while i < b.len() && b[i] != b'`' {
                    i += 1;
                }
            }
            b'}' if b[i + 1] == b'}' => return Some(i),
            _ => {}
        }
        i += 1;
    }
    None
}

fn lex(s: &str) -> Result<Vec<Tok>, String> {
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    let mut out = Vec::new();
    let ident_char = |c: char| c.is_alphanumeric() || c == '_';
    while i < chars.len() {
        let c = chars[i];
        match c {
            ' ' | '\t' | '\n' | '\r' => i += 1,
            '(' => {
                out.push(Tok::LParen);
                i += 1;
            }
            ')' => {
                out.push(Tok::RParen);
                i += 1;
            }
            '|' => {
                out.push(Tok::Pipe);
                i += 1;
            }
            ',' => {
                out.push(Tok::Comma);
                i += 1;
            }
            ':' if chars.get(i + 1) == Some(&'=') => {
                out.push(Tok::Declare);
                i += 2;
            }
            '=' => {
                out.push(Tok::Assign);
                i += 1;
            }
            '$' => {
                let start = i;
                i += 1;
                while i < chars.len() && ident_char(chars[i]) {
                    i += 1;
                }
                out.push(Tok::Var(chars[start..i].iter().collect()));
            }
            '.' if chars
                .get(i + 1)
                .is_some_and(|c| ident_char(*c) && !c.is_ascii_digit()) =>
            {
                let start = i + 1;
                i += 1;
                while i < chars.len() && ident_char(chars[i]) {
                    i += 1;
                }
                out.push(Tok::Field(chars[start..i].iter().collect()));
            }
            '.' => {
                out.push(Tok::Dot);
                i += 1;
            }
            '"' => {
                let mut v = String::new();
                i += 1;
                loop {
                    let Some(&c) = chars.get(i) else {
                        return Err("unterminated quoted string".into());
                    };
                    i += 1;
                    match c {
                        '"' => break,
                        '\\' => {
                            let Some(&e) = chars.get(i) else {
                                return Err("unterminated quoted string".into());
                            };
                            i += 1;
                            v.push(match e {
                                'n' => '\n',
                                't' => '\t',
                                'r' => '\r',
                                '\\' => '\\',
                                '"' => '"',
                                '\'' => '\'',
                                other => return Err(format!("invalid syntax: \\{other}")),
                            });
                        }
                        c => v.push(c),
                    }
                }
                out.push(Tok::Str(v));
            }
            '\'' => {
                // A character constant is its code point.
                let (Some(&c), Some('\'')) = (chars.get(i + 1), chars.get(i + 2)) else {
                    return Err("malformed character constant".into());
                };
                out.push(Tok::Int(c as i64));
                i += 3;
            }
            '`' => {
                let start = i + 1;
                i += 1;
                while i < chars.len() && chars[i] != '`' {
                    i += 1;
                }
                if i >= chars.len() {
                    return Err("unterminated raw quoted string".into());
                }
                out.push(Tok::Str(chars[start..i].iter().collect()));
                i += 1;
            }
            c if c.is_ascii_digit()
                || ((c == '-' || c == '+')
                    && chars.get(i + 1).is_some_and(|d| d.is_ascii_digit())) =>
            {
                let start = i;
                i += 1;
                while i < chars.len()
                    && (chars[i].is_ascii_alphanumeric()
                        || chars[i] == '.'
                        || ((chars[i] == '-' || chars[i] == '+')
                            && matches!(chars[i - 1], 'e' | 'E')))
                {
                    i += 1;
                }
                let text: String = chars[start..i].iter().collect::<String>().replace('_', "");
                let (neg, digits) = match text.strip_prefix('-') {
                    Some(d) => (true, d),
                    None => (false, text.trim_start_matches('+')),
                };
                let radix = match digits.get(..2) {
                    Some("0x" | "0X") => Some(16),
                    Some("0o" | "0O") => Some(8),
                    Some("0b" | "0B") => Some(2),
                    _ => None,
                };
                if let Some(r) = radix
                    && let Ok(n) = i64::from_str_radix(&digits[2..], r)
                {
                    out.push(Tok::Int(if neg { -n } else { n }));
                } else if let Ok(n) = text.parse::<i64>() {
                    out.push(Tok::Int(n));
                } else if let Ok(f) = text.parse::<f64>() {
                    out.push(Tok::Num(f));
                } else {
                    return Err(format!("bad number syntax: {text:?}"));
                }
            }
            c if ident_char(c) => {
                let start = i;
                while i < chars.len() && ident_char(chars[i]) {
                    i += 1;
                }
                out.push(Tok::Ident(chars[start..i].iter().collect()));
            }
            other => return Err(format!("unexpected {other:?} in command")),
        }
    }
    Ok(out)
}

fn parse_pipeline(toks: &[Tok], vars: &mut Vec<String>) -> Result<Pipeline, String> {
    let mut decl = Vec::new();
    let mut toks = toks;
    // `$x := …` or `$k, $v := …`
    if let Some(pos) = toks
        .iter()
        .position(|t| *t == Tok::Declare || *t == Tok::Assign)
    {
        let names: Vec<String> = toks[..pos]
            .iter()
            .filter_map(|t| match t {
                Tok::Var(v) => Some(v.clone()),
                _ => None,
            })
            .collect();
        let well_formed = !names.is_empty()
            && toks[..pos]
                .iter()
                .all(|t| matches!(t, Tok::Var(_) | Tok::Comma))
            && names.len() <= 2;
        if well_formed {
            vars.extend(names.iter().cloned());
            decl = names;
            toks = &toks[pos + 1..];
        }
    }
    // Split into commands at top-level pipes; parenthesised sub-pipelines are handled by an
    // explicit stack in `parse_command`.
    let mut cmds = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    for (i, t) in toks.iter().enumerate() {
        match t {
            Tok::LParen => {
                depth += 1;
                // Parenthesised pipelines are parsed recursively: bound the nesting.
                if depth > MAX_PAREN_DEPTH {
                    return Err("parentheses nested too deeply".into());
                }
            }
            Tok::RParen => {
                depth = depth
                    .checked_sub(1)
                    .ok_or_else(|| "unexpected right paren".to_owned())?
            }
            Tok::Pipe if depth == 0 => {
                cmds.push(parse_command(&toks[start..i], vars)?);
                start = i + 1;
            }
            _ => {}
        }
    }
    if depth != 0 {
        return Err("unclosed left paren".into());
    }
    // Go accepts a trailing `|` (`{{ $value | }}`).
    if start < toks.len() || cmds.is_empty() {
        cmds.push(parse_command(&toks[start..], vars)?);
    }
    Ok(Pipeline { decl, cmds })
}

fn parse_command(toks: &[Tok], vars: &mut Vec<String>) -> Result<Command, String> {
    if toks.is_empty() {
        return Err("missing value for command".into());
    }
    let mut ops: Command = Vec::new();
    let mut i = 0;
    while i < toks.len() {
        let mut op = match &toks[i] {
            Tok::Var(v) => {
                if !vars.contains(v) {
                    return Err(format!("undefined variable \"{v}\""));
                }
                Operand::Var(v.clone(), Vec::new())
            }
            Tok::Field(f) => Operand::Dot(vec![f.clone()]),
            Tok::Dot => Operand::Dot(Vec::new()),
            Tok::Str(s) => Operand::Lit(Val::Str(s.clone())),
            Tok::Num(n) => Operand::Lit(Val::Float(*n)),
            Tok::Int(n) => Operand::Lit(Val::Int(*n)),
            Tok::Ident(id) => match id.as_str() {
                "true" => Operand::Lit(Val::Bool(true)),
                "false" => Operand::Lit(Val::Bool(false)),
                "nil" => Operand::Lit(Val::Nil),
                f if FUNCS.contains(&f) => Operand::Func(f.to_owned()),
                f => return Err(format!("function \"{f}\" not defined")),
            },
            Tok::LParen => {
                let mut depth = 0usize;
                let mut end = i;
                for (j, t) in toks.iter().enumerate().skip(i) {
                    match t {
                        Tok::LParen => depth += 1,
                        Tok::RParen => {
                            depth -= 1;
                            if depth == 0 {
                                end = j;
                                break;
                            }
                        }
                        _ => {}
                    }
                }
                if end <= i {
                    return Err("unclosed left paren".into());
                }
                let sub = parse_pipeline(&toks[i + 1..end], vars)?;
                i = end;
                Operand::Sub(Box::new(sub), Vec::new())
            }
            other => return Err(format!("unexpected {other:?} in operand")),
        };
        i += 1;
        while let Some(Tok::Field(f)) = toks.get(i) {
            match &mut op {
                Operand::Var(_, fields) | Operand::Dot(fields) | Operand::Sub(_, fields) => {
                    fields.push(f.clone())
                }
                _ => return Err(format!("unexpected .{f} in operand")),
            }
            i += 1;
        }
        ops.push(op);
    }
    Ok(ops)
}

fn field_of(v: Val, name: &str) -> Result<Val, String> {
    match v {
        Val::Map(m) => Ok(m.get(name).map_or(Val::Nil, |s| Val::Str(s.clone()))),
        Val::Obj(mut m) => m
            .remove(name)
            .ok_or_else(|| format!("can't evaluate field {name}")),
        Val::Nil => Ok(Val::Nil),
        other => Err(format!(
            "can't evaluate field {name} in type {}",
            type_name(&other)
        )),
    }
}

fn type_name(v: &Val) -> &'static str {
    match v {
        Val::Nil => "nil",
        Val::Bool(_) => "bool",
        Val::Int(_) => "int",
        Val::Float(_) => "float64",
        Val::Str(_) => "string",
        Val::Map(_) => "map[string]string",
        Val::Obj(_) => "struct",
        Val::List(_) => "queryResult",
    }
}

fn lookup_var(name: &str, dot: &Val, env: &Env<'_>) -> Result<Val, String> {
    let found = env
        .vars
        .iter()
        .rev()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.clone())
        .ok_or_else(|| format!("undefined variable \"{name}\""))?;
    let _ = dot;
    Ok(found)
}

fn eval_pipeline(p: &Pipeline, dot: &Val, vars: &mut Env<'_>) -> Result<Val, String> {
    let mut prev: Option<Val> = None;
    for cmd in &p.cmds {
        prev = Some(eval_command(cmd, dot, vars, prev)?);
    }
    let v = prev.unwrap_or(Val::Nil);
    for name in &p.decl {
        vars.vars.push((name.clone(), v.clone()));
    }
    Ok(v)
}

fn eval_operand(op: &Operand, dot: &Val, vars: &mut Env<'_>) -> Result<Val, String> {
    let (mut v, fields) = match op {
        Operand::Var(name, f) => (lookup_var(name, dot, vars)?, f),
        Operand::Dot(f) => (dot.clone(), f),
        Operand::Lit(v) => return Ok(v.clone()),
        Operand::Func(f) => return call(f, Vec::new(), vars),
        Operand::Sub(p, f) => (eval_pipeline(p, dot, vars)?, f),
    };
    for f in fields {
        v = field_of(v, f)?;
    }
    Ok(v)
}

fn eval_command(
    cmd: &Command,
    dot: &Val,
    vars: &mut Env<'_>,
    piped: Option<Val>,
) -> Result<Val, String> {
    match cmd.first() {
        Some(Operand::Func(f)) => {
            let mut args = Vec::with_capacity(cmd.len());
            for op in &cmd[1..] {
                args.push(eval_operand(op, dot, vars)?);
            }
            if let Some(p) = piped {
                args.push(p);
            }
            call(f, args, vars)
        }
        Some(op) => {
            if piped.is_some() || cmd.len() > 1 {
                return Err("can't give argument to non-function".into());
            }
            eval_operand(op, dot, vars)
        }
        None => Err("missing value for command".into()),
    }
}

fn want(args: &[Val], n: usize, f: &str) -> Result<(), String> {
    if args.len() == n {
        Ok(())
    } else {
        Err(format!(
            "wrong number of args for {f}: want {n} got {}",
            args.len()
        ))
    }
}

fn as_str(v: &Val) -> String {
    match v {
        Val::Str(s) => s.clone(),
        other => other.print(),
    }
}

fn compare(a: &Val, b: &Val) -> Result<std::cmp::Ordering, String> {
    match (a, b) {
        (Val::Str(x), Val::Str(y)) => Ok(x.cmp(y)),
        (Val::Int(x), Val::Int(y)) => Ok(x.cmp(y)),
        (Val::Bool(x), Val::Bool(y)) => Ok(x.cmp(y)),
        (x, y) => {
            let (x, y) = (x.to_float()?, y.to_float()?);
            x.partial_cmp(&y)
                .ok_or_else(|| "incompatible types for comparison".to_owned())
        }
    }
}

fn call(f: &str, args: Vec<Val>, env: &Env<'_>) -> Result<Val, String> {
    use std::cmp::Ordering::*;
    let one = |args: &[Val]| -> Result<f64, String> {
        want(args, 1, f)?;
        args[0].to_float()
    };
    Ok(match f {
        "humanize" => Val::Str(humanize(one(&args)?)),
        "humanize1024" => Val::Str(humanize1024(one(&args)?)),
        "humanizeDuration" => Val::Str(humanize_duration(one(&args)?)),
        "humanizePercentage" => Val::Str(format!("{}%", go_g(one(&args)? * 100.0, 4))),
        "humanizeTimestamp" => Val::Str(humanize_timestamp(one(&args)?)),
        "title" => {
            want(&args, 1, f)?;
            Val::Str(title(&as_str(&args[0])))
        }
        "toUpper" => {
            want(&args, 1, f)?;
            Val::Str(as_str(&args[0]).to_uppercase())
        }
        "toLower" => {
            want(&args, 1, f)?;
            Val::Str(as_str(&args[0]).to_lowercase())
        }
        "stripPort" => {
            want(&args, 1, f)?;
            let s = as_str(&args[0]);
            Val::Str(match s.rsplit_once(':') {
                Some((host, port)) if port.chars().all(|c| c.is_ascii_digit()) => host
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .to_owned(),
                _ => s,
            })
        }
        "safeHtml" | "html" | "js" | "urlquery" => {
            want(&args, 1, f)?;
            Val::Str(as_str(&args[0]))
        }
        "printf" => {
            let Some((fmt, rest)) = args.split_first() else {
                return Err("wrong number of args for printf: want at least 1 got 0".into());
            };
            Val::Str(go_sprintf(&as_str(fmt), rest))
        }
        "print" => Val::Str(args.iter().map(Val::print).collect::<Vec<_>>().join(" ")),
        "reReplaceAll" => {
            want(&args, 3, f)?;
            let re = regex::Regex::new(&as_str(&args[0])).map_err(|e| e.to_string())?;
            Val::Str(
                re.replace_all(&as_str(&args[2]), as_str(&args[1]).as_str())
                    .into_owned(),
            )
        }
        "match" => {
            want(&args, 2, f)?;
            let re = regex::Regex::new(&as_str(&args[0])).map_err(|e| e.to_string())?;
            Val::Bool(re.is_match(&as_str(&args[1])))
        }
        "eq" => {
            if args.len() < 2 {
                return Err("missing argument for comparison".into());
            }
            let mut any = false;
            for b in &args[1..] {
                if compare(&args[0], b)? == Equal {
                    any = true;
                }
            }
            Val::Bool(any)
        }
        "ne" | "lt" | "le" | "gt" | "ge" => {
            want(&args, 2, f)?;
            let o = compare(&args[0], &args[1])?;
            Val::Bool(match f {
                "ne" => o != Equal,
                "lt" => o == Less,
                "le" => o != Greater,
                "gt" => o == Greater,
                _ => o != Less,
            })
        }
        "and" => {
            let mut last = Val::Nil;
            for a in args {
                if !a.truthy() {
                    return Ok(a);
                }
                last = a;
            }
            last
        }
        "or" => {
            let mut last = Val::Nil;
            for a in args {
                if a.truthy() {
                    return Ok(a);
                }
                last = a;
            }
            last
        }
        "not" => {
            want(&args, 1, f)?;
            Val::Bool(!args[0].truthy())
        }
        "len" => {
            want(&args, 1, f)?;
            Val::Int(match &args[0] {
                Val::Str(s) => s.len() as i64,
                Val::Map(m) => m.len() as i64,
                Val::Obj(m) => m.len() as i64,
                other => return Err(format!("len of type {}", type_name(other))),
            })
        }
        "index" => {
            want(&args, 2, f)?;
            field_of(args[0].clone(), &as_str(&args[1]))?
        }
        "query" => {
            want(&args, 1, f)?;
            let Some(q) = env.query else {
                return Err("error calling query: no query engine".into());
            };
            let rows = q(&as_str(&args[0])).map_err(|e| format!("error calling query: {e}"))?;
            Val::List(rows.into_iter().map(|(l, v)| sample_val(l, v)).collect())
        }
        "first" => {
            want(&args, 1, f)?;
            match &args[0] {
                Val::List(l) => l.first().cloned().ok_or_else(|| {
                    "error calling first: first() called on vector with no elements".to_owned()
                })?,
                other => {
                    return Err(format!(
                        "error calling first: not a query result: {}",
                        other.print()
                    ));
                }
            }
        }
        "value" => {
            want(&args, 1, f)?;
            field_of(args[0].clone(), "Value")?
        }
        "label" => {
            want(&args, 2, f)?;
            let labels = field_of(args[1].clone(), "Labels")?;
            field_of(labels, &as_str(&args[0]))?
        }
        "strvalue" => {
            want(&args, 1, f)?;
            let labels = field_of(args[0].clone(), "Labels")?;
            match field_of(labels, "__value__")? {
                Val::Nil => Val::Str(String::new()),
                v => v,
            }
        }
        "sortByLabel" => {
            want(&args, 2, f)?;
            let name = as_str(&args[0]);
            let Val::List(mut l) = args[1].clone() else {
                return Err("error calling sortByLabel: not a query result".into());
            };
            let key = |v: &Val| {
                as_str(
                    &field_of(field_of(v.clone(), "Labels").unwrap_or(Val::Nil), &name)
                        .unwrap_or(Val::Nil),
                )
            };
            l.sort_by_key(|v| key(v));
            Val::List(l)
        }
        "args" => Val::Obj(
            args.into_iter()
                .enumerate()
                .map(|(i, v)| (format!("arg{i}"), v))
                .collect(),
        ),
        "tableLink" => {
            want(&args, 1, f)?;
            Val::Str(crate::notifier::table_link_for_expression(&as_str(
                &args[0],
            )))
        }
        "graphLink" => {
            want(&args, 1, f)?;
            Val::Str(format!(
                "/graph?g0.expr={}&g0.tab=0",
                crate::notifier::query_escape(&as_str(&args[0]))
            ))
        }
        "externalURL" => Val::Str(env.external_url.clone()),
        "pathPrefix" => Val::Str(
            env.external_url
                .split_once("://")
                .and_then(|(_, rest)| rest.find('/').map(|i| rest[i..].to_owned()))
                .unwrap_or_default()
                .trim_end_matches('/')
                .to_owned(),
        ),
        "parseDuration" => {
            want(&args, 1, f)?;
            let d = model::duration::Duration::parse(&as_str(&args[0]))
                .map_err(|e| format!("error calling parseDuration: {e}"))?;
            Val::Float(d.as_millis() as f64 / 1000.0)
        }
        "stripDomain" => {
            want(&args, 1, f)?;
            let s = as_str(&args[0]);
            let (host, port) = match s.rsplit_once(':') {
                Some((h, p)) if p.chars().all(|c| c.is_ascii_digit()) => {
                    (h.to_owned(), format!(":{p}"))
                }
                _ => (s.clone(), String::new()),
            };
            if host.parse::<std::net::IpAddr>().is_ok() || host.starts_with('[') {
                Val::Str(s)
            } else {
                Val::Str(format!("{}{port}", host.split('.').next().unwrap_or("")))
            }
        }
        "println" => Val::Str(format!(
            "{}\n",
            args.iter().map(Val::print).collect::<Vec<_>>().join(" ")
        )),
        other => return Err(format!("function \"{other}\" not implemented")),
    })
}

fn sample_val(labels: BTreeMap<String, String>, value: f64) -> Val {
    let mut m = BTreeMap::new();
    m.insert("Labels".to_owned(), Val::Map(labels));
    m.insert("Value".to_owned(), Val::Float(value));
    Val::Obj(m)
}

/// Go's `%.{prec}g`.
pub(crate) fn go_g(v: f64, prec: usize) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    let prec = prec.max(1);
    let e = format!("{:.*e}", prec - 1, v);
    let (mant, exp) = e.split_once('e').unwrap_or((&e, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let trim = |s: &str| -> String {
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_owned()
        } else {
            s.to_owned()
        }
    };
    if exp < -4 || exp >= prec as i32 {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{}e{sign}{:02}", trim(mant), exp.abs())
    } else {
        let decimals = (prec as i32 - 1 - exp).max(0) as usize;
        trim(&format!("{v:.decimals$}"))
    }
}

fn humanize(mut v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return go_g(v, 4);
    }
    let mut prefix = "";
    if v.abs() >= 1.0 {
        for p in ["k", "M", "G", "T", "P", "E", "Z", "Y"] {
            if v.abs() < 1000.0 {
                break;
            }
            prefix = p;
            v /= 1000.0;
        }
    } else {
        for p in ["m", "u", "n", "p", "f", "a", "z", "y"] {
            if v.abs() >= 1.0 {
                break;
            }
            prefix = p;
            v *= 1000.0;
        }
    }
    format!("{}{prefix}", go_g(v, 4))
}

fn humanize1024(mut v: f64) -> String {
    if v.abs() <= 1.0 || !v.is_finite() {
        return go_g(v, 4);
    }
    let mut prefix = "";
    for p in ["ki", "Mi", "Gi", "Ti", "Pi", "Ei", "Zi", "Yi"] {
        if v.abs() < 1024.0 {
            break;
        }
        prefix = p;
        v /= 1024.0;
    }
    format!("{}{prefix}", go_g(v, 4))
}

fn humanize_duration(mut v: f64) -> String {
    if !v.is_finite() {
        return go_g(v, 4);
    }
    if v == 0.0 {
        return format!("{}s", go_g(v, 4));
    }
    if v.abs() >= 1.0 {
        let mut sign = "";
        if v < 0.0 {
            sign = "-";
            v = -v;
        }
        let d = v as i64;
        let (s, m, h, days) = (d % 60, (d / 60) % 60, (d / 3600) % 24, d / 86400);
        if days != 0 {
            return format!("{sign}{days}d {h}h {m}m {s}s");
        }
        if h != 0 {
            return format!("{sign}{h}h {m}m {s}s");
        }
        if m != 0 {
            return format!("{sign}{m}m {s}s");
        }
        return format!("{sign}{}s", go_g(v, 4));
    }
    let mut prefix = "";
    for p in ["m", "u", "n", "p", "f", "a", "z", "y"] {
        if v.abs() >= 1.0 {
            break;
        }
        prefix = p;
        v *= 1000.0;
    }
    format!("{}{prefix}s", go_g(v, 4))
}

fn humanize_timestamp(v: f64) -> String {
    if !v.is_finite() {
        return go_g(v, 4);
    }
    let secs = v.floor() as i64;
    let nanos = ((v - v.floor()) * 1e9).round() as i64;
    let days = secs.div_euclid(86400);
    let rem = secs.rem_euclid(86400);
    let (y, mo, d) = civil_from_days(days);
    let mut frac = String::new();
    if nanos > 0 {
        frac = format!(".{nanos:09}").trim_end_matches('0').to_owned();
    }
    format!(
        "{y:04}-{mo:02}-{d:02} {:02}:{:02}:{:02}{frac} +0000 UTC",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60
    )
}

fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn title(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut start = true;
    for c in s.chars() {
        if start && c.is_alphabetic() {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        start = !(c.is_alphanumeric() || c == '_' || c == '\'');
    }
    out
}

/// A subset of Go's `fmt.Sprintf`: flags `-+ 0`, width, precision, verbs `v s d f F e g q x %`.
fn go_sprintf(format: &str, args: &[Val]) -> String {
    let mut out = String::new();
    let mut chars = format.chars().peekable();
    let mut next = 0usize;
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut flags = String::new();
        while let Some(&f) = chars.peek() {
            if "-+ 0#".contains(f) {
                flags.push(f);
                chars.next();
            } else {
                break;
            }
        }
        let mut width = String::new();
        while let Some(&d) = chars.peek().filter(|d| d.is_ascii_digit()) {
            width.push(d);
            chars.next();
        }
        let mut prec: Option<usize> = None;
        if chars.peek() == Some(&'.') {
            chars.next();
            let mut p = String::new();
            while let Some(&d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                p.push(d);
                chars.next();
            }
            // Bounded: a template must not make huge strings.
            prec = Some(p.parse::<usize>().unwrap_or(0).min(1000));
        }
        let Some(verb) = chars.next() else {
            out.push_str("%!(NOVERB)");
            break;
        };
        if verb == '%' {
            out.push('%');
            continue;
        }
        let Some(arg) = args.get(next) else {
            out.push_str(&format!("%!{verb}(MISSING)"));
            continue;
        };
        next += 1;
        let body = match verb {
            'v' | 's' => {
                let s = as_str(arg);
                match prec {
                    Some(p) if verb == 's' => s.chars().take(p).collect(),
                    _ => s,
                }
            }
            'q' => format!("{:?}", as_str(arg)),
            'd' => match arg {
                Val::Int(i) => i.to_string(),
                other => format!("%!d({}={})", type_name(other), other.print()),
            },
            'f' | 'F' | 'e' | 'g' => match arg.to_float() {
                Ok(v) if !matches!(arg, Val::Str(_)) => {
                    let mut s = match verb {
                        'e' => {
                            let e = format!("{:.*e}", prec.unwrap_or(6), v);
                            match e.split_once('e') {
                                Some((m, x)) => {
                                    let x: i32 = x.parse().unwrap_or(0);
                                    format!("{m}e{}{:02}", if x < 0 { '-' } else { '+' }, x.abs())
                                }
                                None => e,
                            }
                        }
                        'g' => match prec {
                            Some(p) => go_g(v, p),
                            None => model::exposition::float_to_string(v),
                        },
                        _ if v.is_nan() => "NaN".into(),
                        _ if v.is_infinite() => {
                            if v > 0.0 {
                                "+Inf".into()
                            } else {
                                "-Inf".into()
                            }
                        }
                        _ => format!("{:.*}", prec.unwrap_or(6), v),
                    };
                    if flags.contains('+') && v >= 0.0 && !s.starts_with('+') {
                        s.insert(0, '+');
                    }
                    s
                }
                _ => format!("%!{verb}({}={})", type_name(arg), arg.print()),
            },
            'x' => match arg {
                Val::Int(i) => format!("{i:x}"),
                other => as_str(other).bytes().map(|b| format!("{b:02x}")).collect(),
            },
            other => format!("%!{other}({}={})", type_name(arg), arg.print()),
        };
        let w: usize = width.parse::<usize>().unwrap_or(0).min(10_000);
        let len = body.chars().count();
        if len < w {
            let pad = w - len;
            if flags.contains('-') {
                out.push_str(&body);
                out.extend(std::iter::repeat_n(' ', pad));
            } else if flags.contains('0') && verb != 's' {
                let (sign, digits) = match body.strip_prefix('-') {
                    Some(d) => ("-", d),
                    None => ("", body.as_str()),
                };
                out.push_str(sign);
                out.extend(std::iter::repeat_n('0', pad));
                out.push_str(digits);
            } else {
                out.extend(std::iter::repeat_n(' ', pad));
                out.push_str(&body);
            }
        } else {
            out.push_str(&body);
        }
    }
    if next < args.len() {
        out.push_str("%!(EXTRA ");
        let extra: Vec<String> = args[next..]
            .iter()
            .map(|a| format!("{}={}", type_name(a), a.print()))
            .collect();
        out.push_str(&extra.join(", "));
        out.push(')');
    }
    out
}

/// Parses and executes `text`; on failure returns Prometheus' replacement text
/// `<error expanding template: …>`.
pub fn expand(name: &str, text: &str, data: &TemplateData) -> String {
    expand_with(name, text, data, None)
}

/// [`expand`] with a `query` function.
pub fn expand_with(
    name: &str,
    text: &str,
    data: &TemplateData,
    query: Option<&QueryFn<'_>>,
) -> String {
    match Template::parse(text).and_then(|t| t.execute_with(data, query)) {
        Ok(s) => s,
        Err(e) => format!("<error expanding template: template: {name}:{e}>"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data() -> TemplateData {
        let mut labels = BTreeMap::new();
        labels.insert("instance".to_owned(), "host:9100".to_owned());
        labels.insert("job".to_owned(), "node".to_owned());
        let mut ext = BTreeMap::new();
        ext.insert("cluster".to_owned(), "eu1".to_owned());
        TemplateData {
            labels,
            external_labels: ext,
            external_url: "http://prom".into(),
            value: 1234.5678,
        }
    }

    fn run(t: &str) -> String {
        match Template::parse(t).and_then(|t| t.execute(&data())) {
            Ok(s) => s,
            Err(e) => format!("ERR {e}"),
        }
    }

    #[test]
    fn variables_and_fields() {
        assert_eq!(
            run("{{ $labels.instance }} of {{ $labels.job }}"),
            "host:9100 of node"
        );
        assert_eq!(
            run("{{ .Labels.job }}/{{ $externalLabels.cluster }}"),
            "node/eu1"
        );
        assert_eq!(run("{{ $value }}"), "1234.5678");
        assert_eq!(run("{{ $labels.missing }}"), "<no value>");
        assert_eq!(run("a {{- \"b\" -}} c"), "abc");
        assert_eq!(run("{{/* comment */}}x"), "x");
        assert_eq!(run("{{ $x := \"v\" }}{{ $x }}"), "v");
    }

    #[test]
    fn functions() {
        assert_eq!(run("{{ humanize $value }}"), "1.235k");
        assert_eq!(run("{{ $value | humanize }}"), "1.235k");
        assert_eq!(run("{{ humanize 0.001234 }}"), "1.234m");
        assert_eq!(run("{{ humanize1024 1048576 }}"), "1Mi");
        assert_eq!(run("{{ humanizeDuration 3661 }}"), "1h 1m 1s");
        assert_eq!(run("{{ humanizeDuration 0.25 }}"), "250ms");
        assert_eq!(run("{{ humanizeDuration 1.5 }}"), "1.5s");
        assert_eq!(run("{{ humanizePercentage 0.1234 }}"), "12.34%");
        assert_eq!(run("{{ printf \"%.2f\" $value }}"), "1234.57");
        assert_eq!(run("{{ printf \"%s=%d\" \"a\" 3 }}"), "a=3");
        assert_eq!(run("{{ title \"hello world\" }}"), "Hello World");
        assert_eq!(
            run("{{ toUpper $labels.job }}{{ toLower \"AB\" }}"),
            "NODEab"
        );
        assert_eq!(
            run("{{ humanizeTimestamp 0 }}"),
            "1970-01-01 00:00:00 +0000 UTC"
        );
        assert_eq!(
            run("{{ reReplaceAll \":.*\" \"\" $labels.instance }}"),
            "host"
        );
    }

    #[test]
    fn conditionals_and_range() {
        assert_eq!(
            run("{{ if gt $value 1000.0 }}big{{ else }}small{{ end }}"),
            "big"
        );
        assert_eq!(
            run(
                "{{ if lt $value 10.0 }}a{{ else if eq $labels.job \"node\" }}b{{ else }}c{{ end }}"
            ),
            "b"
        );
        assert_eq!(
            run("{{ range $k, $v := $labels }}{{ $v }};{{ end }}"),
            "host:9100;node;"
        );
        assert_eq!(
            run("{{ range $labels }}{{ . }},{{ end }}"),
            "host:9100,node,"
        );
    }

    #[test]
    fn query_with_and_first() {
        let q = |expr: &str| -> QueryRows {
            match expr {
                "up" => Ok(vec![
                    (
                        BTreeMap::from([("instance".to_owned(), "b".to_owned())]),
                        0.0,
                    ),
                    (
                        BTreeMap::from([("instance".to_owned(), "a".to_owned())]),
                        1.0,
                    ),
                ]),
                "none" => Ok(Vec::new()),
                _ => Err("bad query".into()),
            }
        };
        let run = |t: &str| match Template::parse(t).and_then(|t| t.execute_with(&data(), Some(&q)))
        {
            Ok(s) => s,
            Err(e) => format!("ERR {e}"),
        };
        assert_eq!(
            run("{{ with query \"up\" }}{{ . | first | value }}{{ end }}"),
            "0"
        );
        assert_eq!(
            run("{{ with query \"none\" }}x{{ else }}empty{{ end }}"),
            "empty"
        );
        assert_eq!(
            run(
                "{{ range sortByLabel \"instance\" (query \"up\") }}{{ .Labels.instance }}={{ .Value }} {{ end }}"
            ),
            "a=1 b=0 "
        );
        assert_eq!(run("{{ query \"up\" | first | label \"instance\" }}"), "b");
        assert!(run("{{ query \"bad\" }}").starts_with("ERR error calling query"));
        assert_eq!(run("{{ with $x := \"v\" }}{{ $x }}{{ . }}{{ end }}"), "vv");
    }

    #[test]
    fn define_template_and_literals() {
        assert_eq!(
            run("{{ define \"x\" }}<{{ . }}>{{ end }}{{ template \"x\" $labels.job }}"),
            "<node>"
        );
        assert_eq!(run("{{ block \"b\" 1 }}[{{ . }}]{{ end }}"), "[1]");
        assert_eq!(run("{{ 0x10 }} {{ 'a' }} {{ -2 }}"), "16 97 -2");
        assert!(run("{{ 1 2 }}").starts_with("ERR"));
        assert!(Template::parse("{{ if true }}{{ $y := 1 }}{{ end }}{{ $y }}").is_err());
    }

    #[test]
    fn hostile_templates_are_bounded() {
        assert_eq!(run("{{ printf \"%999999999d\" 1 }}").len(), 10_000);
        assert!(run("{{ printf \"%.99999999f\" 1.0 }}").len() < 1100);
        assert!(Template::parse("{{ ((( }}").is_err());
        assert!(Template::parse("{{ ) }}").is_err());
        let parens = format!("{{{{ {}1{} }}}}", "(".repeat(50_000), ")".repeat(50_000));
        assert!(Template::parse(&parens).is_err());
        let ok = format!("{{{{ {}1{} }}}}", "(".repeat(50), ")".repeat(50));
        assert_eq!(run(&ok), "1");
        assert!(Template::parse(&"{{ if true }}".repeat(10_000)).is_err());
        let deep = format!(
            "{}x{}",
            "{{ if true }}".repeat(5_000),
            "{{ end }}".repeat(5_000)
        );
        assert_eq!(run(&deep), "x");
    }

    #[test]
    fn parse_errors() {
        assert!(Template::parse("{{ $labels.x ").is_err());
        assert!(Template::parse("{{ nosuchfunc 1 }}").is_err());
        assert!(Template::parse("{{ $undefined }}").is_err());
        assert!(Template::parse("{{ if 1 }}x").is_err());
        assert!(Template::parse("{{ end }}").is_err());
        assert!(
            expand("x", "{{ humanize \"abc\" }}", &data()).starts_with("<error expanding template")
        );
    }

    #[test]
    fn go_g_matches_go() {
        assert_eq!(go_g(1234.5678, 4), "1235");
        assert_eq!(go_g(12345.0, 4), "1.234e+04");
        assert_eq!(go_g(0.5, 4), "0.5");
        assert_eq!(go_g(0.00001234, 4), "1.234e-05");
    }
}
