//! A campaign's audience: a CSV (a header row with `phone` and parameter columns, read as
//! a stream) or a list given through the API, checked row by row.
//!
//! Numbers are normalised to E.164 digits (no `+`): `+55 (11) 98765-4321`, `011987654321`
//! and `5511987654321` are one number, and 10 or 11 digits without a country code are taken
//! as Brazilian (55). A Brazilian mobile with and without its ninth digit is one customer
//! (WhatsApp ids of accounts older than the ninth digit keep the 8-digit form): duplicates
//! are found on the 13-digit form ([`Number::canonical`]), the first row wins, and the
//! number is sent as given. Bad rows are reported with their line and reason, not fatal.

use std::collections::HashMap;
use std::fmt;
use std::io::{BufRead, BufReader, Read};

use serde::{Deserialize, Serialize};

/// The column every audience has.
pub const PHONE_COLUMN: &str = "phone";
/// Bad rows and duplicates reported one by one; more are counted only.
pub const MAX_REPORTED: usize = 1000;
/// A template parameter's longest text.
pub const MAX_PARAMETER: usize = 1024;
/// Brazil's country code, assumed for 10 and 11 digits.
pub const DEFAULT_COUNTRY: &str = "55";

/// How one template parameter is filled, in the template's order: a column of the audience
/// (`{"column": "nome"}`) or the same text for everyone (`{"text": "Loja A"}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Parameter {
    Column(String),
    Text(String),
}

/// A number as the audience gave it, normalised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Number {
    /// E.164 digits without `+`: what is sent to.
    pub digits: String,
    /// The same customer's key: a Brazilian mobile in its 13-digit form, else the digits.
    pub canonical: String,
}

impl Number {
    /// Every form the customer may be known by (both ninth-digit forms of a Brazilian
    /// mobile): what suppression lists are checked against.
    pub fn variants(&self) -> Vec<String> {
        let mut variants = vec![self.digits.clone()];
        if self.canonical != self.digits {
            variants.push(self.canonical.clone());
        } else if let Some(old) = without_ninth_digit(&self.digits) {
            variants.push(old);
        }
        variants
    }
}

/// Why a number was not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NumberError {
    #[error("empty phone")]
    Empty,
    #[error("a phone number has only digits, spaces, ( ) - . and a leading +")]
    Characters,
    #[error("a phone number has its area code (DDD), or + and its country code")]
    TooShort,
    #[error("an international number has 8 to 15 digits")]
    Length,
    #[error(
        "a Brazilian number is 55, a DDD of two digits 1-9, and 8 or 9 digits (a mobile's 9 digits start with 9)"
    )]
    Brazilian,
}

/// Normalises a phone number as people write it (see the module's doc).
pub fn normalise(given: &str) -> Result<Number, NumberError> {
    let given = given.trim();
    if given.is_empty() {
        return Err(NumberError::Empty);
    }
    let (plus, rest) = match given.strip_prefix('+') {
        Some(rest) => (true, rest),
        None => (false, given),
    };
    let mut digits = String::with_capacity(rest.len());
    for c in rest.chars() {
        match c {
            '0'..='9' => digits.push(c),
            ' ' | '(' | ')' | '-' | '.' => {}
            _ => return Err(NumberError::Characters),
        }
    }
    let digits = if plus {
        digits
    } else if let Some(international) = digits.strip_prefix("00") {
        international.to_owned()
    } else {
        // A leading 0 is Brazil's trunk prefix: 0 + DDD + number.
        let national = digits.strip_prefix('0').unwrap_or(&digits);
        match national.len() {
            10 | 11 => format!("{DEFAULT_COUNTRY}{national}"),
            _ if national.len() != digits.len() => return Err(NumberError::Brazilian),
            0..=9 => return Err(NumberError::TooShort),
            _ => digits,
        }
    };
    if !(8..=15).contains(&digits.len()) || digits.starts_with('0') {
        return Err(NumberError::Length);
    }
    if !digits.starts_with(DEFAULT_COUNTRY) {
        return Ok(Number {
            canonical: digits.clone(),
            digits,
        });
    }
    let bytes = digits.as_bytes();
    let ddd_ok = bytes.len() >= 5 && bytes[2] != b'0' && bytes[3] != b'0';
    let valid = ddd_ok
        && match bytes.len() {
            13 => bytes[4] == b'9',
            12 => (b'2'..=b'9').contains(&bytes[4]),
            _ => false,
        };
    if !valid {
        return Err(NumberError::Brazilian);
    }
    let canonical = with_ninth_digit(&digits).unwrap_or_else(|| digits.clone());
    Ok(Number { digits, canonical })
}

/// `55 DD 9XXXXXXXX` of an old-form mobile (`55 DD XXXXXXXX` starting 6-9).
fn with_ninth_digit(digits: &str) -> Option<String> {
    let bytes = digits.as_bytes();
    (digits.len() == 12 && digits.starts_with(DEFAULT_COUNTRY) && (b'6'..=b'9').contains(&bytes[4]))
        .then(|| format!("{}9{}", &digits[..4], &digits[4..]))
}

/// `55 DD XXXXXXXX` of a 13-digit mobile whose 8 digits start 6-9.
fn without_ninth_digit(digits: &str) -> Option<String> {
    let bytes = digits.as_bytes();
    (digits.len() == 13
        && digits.starts_with(DEFAULT_COUNTRY)
        && bytes[4] == b'9'
        && (b'6'..=b'9').contains(&bytes[5]))
    .then(|| format!("{}{}", &digits[..4], &digits[5..]))
}

/// One customer to send to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipient {
    /// The CSV line (1 is the header), or the list's index from 1.
    pub line: u64,
    pub number: Number,
    /// The template's parameters, in order.
    pub params: Vec<String>,
}

/// Why a row was left out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RowError {
    /// The phone is not a number.
    Phone { detail: String },
    /// A parameter's column is empty, or its text breaks WhatsApp's rules.
    Parameter { column: String, detail: String },
    /// The row has another number of fields than the header.
    Fields { found: usize, expected: usize },
    /// The row is not UTF-8 text.
    Encoding,
    /// The same customer as an earlier row (the first is kept).
    Duplicate { first_line: u64 },
}

impl fmt::Display for RowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RowError::Phone { detail } => write!(f, "phone: {detail}"),
            RowError::Parameter { column, detail } => write!(f, "{column}: {detail}"),
            RowError::Fields { found, expected } => {
                write!(f, "{found} fields where the header has {expected}")
            }
            RowError::Encoding => f.write_str("not UTF-8 text"),
            RowError::Duplicate { first_line } => {
                write!(f, "the same customer as line {first_line}")
            }
        }
    }
}

/// A row left out, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rejected {
    pub line: u64,
    #[serde(flatten)]
    pub error: RowError,
}

/// What makes a whole audience unreadable (nothing is imported).
#[derive(Debug, thiserror::Error)]
pub enum AudienceError {
    #[error("the header row has no `{PHONE_COLUMN}` column")]
    NoPhoneColumn,
    #[error(
        "parameter {index} is filled from column `{column}`, which the header row does not have"
    )]
    MissingColumn { index: usize, column: String },
    #[error("the file has no header row")]
    Empty,
    #[error("the file cannot be read: {0}")]
    Read(String),
}

/// The rows' checks, shared by the CSV and the API list: parameters filled, duplicates
/// found.
struct Checker<'a> {
    parameters: &'a [Parameter],
    /// Each parameter's column in lowercase (`None`: a fixed text), made once.
    columns: Vec<Option<String>>,
    first_line: HashMap<String, u64>,
}

impl<'a> Checker<'a> {
    fn new(parameters: &'a [Parameter]) -> Self {
        let columns = parameters
            .iter()
            .map(|parameter| match parameter {
                Parameter::Column(column) => Some(column.to_lowercase()),
                Parameter::Text(_) => None,
            })
            .collect();
        Self {
            parameters,
            columns,
            first_line: HashMap::new(),
        }
    }

    /// `value(column)`: the row's field under that (lowercase) column name.
    fn check<'v>(
        &mut self,
        line: u64,
        phone: &str,
        value: impl Fn(&str) -> Option<&'v str>,
    ) -> Result<Recipient, RowError> {
        let number = normalise(phone).map_err(|error| RowError::Phone {
            detail: error.to_string(),
        })?;
        let params = self
            .parameters
            .iter()
            .zip(&self.columns)
            .map(|(parameter, lowercase)| match (parameter, lowercase) {
                (Parameter::Text(text), _) | (Parameter::Column(text), None) => Ok(text.clone()),
                (Parameter::Column(column), Some(lowercase)) => {
                    let text = value(lowercase).unwrap_or("").trim();
                    parameter_text(text).map_err(|detail| RowError::Parameter {
                        column: column.clone(),
                        detail: detail.into(),
                    })?;
                    Ok(text.to_owned())
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        if let Some(first_line) = self.first_line.get(&number.canonical) {
            return Err(RowError::Duplicate {
                first_line: *first_line,
            });
        }
        self.first_line.insert(number.canonical.clone(), line);
        Ok(Recipient {
            line,
            number,
            params,
        })
    }
}

/// WhatsApp refuses a parameter that is empty, has a new line or tab, or more than four
/// spaces in a row.
fn parameter_text(text: &str) -> Result<(), &'static str> {
    if text.is_empty() {
        Err("empty: the template needs it")
    } else if text.contains(['\n', '\r', '\t']) {
        Err("WhatsApp takes no new line or tab in a parameter")
    } else if text.contains("     ") {
        Err("WhatsApp takes no more than four spaces in a row in a parameter")
    } else if text.chars().count() > MAX_PARAMETER {
        Err("longer than 1024 characters")
    } else {
        Ok(())
    }
}

/// A CSV audience, read row by row from any `Read` (a file, an object's stream). Its
/// separator is `,` or, as spreadsheets in Brazil write it, `;` (whichever the header row
/// has). Each item is a recipient or a row left out.
pub struct CsvAudience<'a, R: Read> {
    records: csv::StringRecordsIntoIter<NoBlankLines<BufReader<R>>>,
    phone: usize,
    columns: HashMap<String, usize>,
    width: usize,
    checker: Checker<'a>,
}

impl<'a, R: Read> CsvAudience<'a, R> {
    pub fn new(reader: R, parameters: &'a [Parameter]) -> Result<Self, AudienceError> {
        let mut reader = BufReader::with_capacity(64 * 1024, reader);
        let start = reader
            .fill_buf()
            .map_err(|error| AudienceError::Read(error.to_string()))?;
        let first_line = start.split(|b| *b == b'\n').next().unwrap_or(&[]);
        let delimiter = if first_line.contains(&b';') && !first_line.contains(&b',') {
            b';'
        } else {
            b','
        };
        let mut csv = csv::ReaderBuilder::new()
            .delimiter(delimiter)
            .flexible(true)
            .trim(csv::Trim::All)
            .from_reader(NoBlankLines::new(reader));
        let header = csv
            .headers()
            .map_err(|error| AudienceError::Read(error.to_string()))?
            .clone();
        if header.is_empty() || header.iter().all(str::is_empty) {
            return Err(AudienceError::Empty);
        }
        let mut columns = HashMap::new();
        for (index, name) in header.iter().enumerate() {
            // The first of two columns of the same name wins.
            columns
                .entry(name.trim_start_matches('\u{feff}').to_lowercase())
                .or_insert(index);
        }
        let phone = *columns
            .get(PHONE_COLUMN)
            .ok_or(AudienceError::NoPhoneColumn)?;
        for (index, parameter) in parameters.iter().enumerate() {
            if let Parameter::Column(column) = parameter
                && !columns.contains_key(&column.to_lowercase())
            {
                return Err(AudienceError::MissingColumn {
                    index: index + 1,
                    column: column.clone(),
                });
            }
        }
        Ok(Self {
            records: csv.into_records(),
            phone,
            columns,
            width: header.len(),
            checker: Checker::new(parameters),
        })
    }
}

impl<R: Read> Iterator for CsvAudience<'_, R> {
    /// A recipient, a row left out, or (ending the audience) a read failure.
    type Item = Result<Result<Recipient, Rejected>, AudienceError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let record = match self.records.next()? {
                Ok(record) => record,
                Err(error) => {
                    let line = error.position().map_or(0, |p| p.line());
                    return Some(match error.kind() {
                        csv::ErrorKind::Utf8 { .. } => Ok(Err(Rejected {
                            line,
                            error: RowError::Encoding,
                        })),
                        _ => Err(AudienceError::Read(error.to_string())),
                    });
                }
            };
            let line = record.position().map_or(0, |p| p.line());
            if record.iter().all(str::is_empty) {
                continue; // a blank line, as spreadsheets leave at the end
            }
            if record.len() != self.width {
                return Some(Ok(Err(Rejected {
                    line,
                    error: RowError::Fields {
                        found: record.len(),
                        expected: self.width,
                    },
                })));
            }
            let columns = &self.columns;
            let phone = record.get(self.phone).unwrap_or("");
            let checked = self.checker.check(line, phone, |column| {
                columns.get(column).and_then(|index| record.get(*index))
            });
            return Some(Ok(checked.map_err(|error| Rejected { line, error })));
        }
    }
}

/// The csv crate skips blank lines but counts them into the next record's line: this
/// reader turns each blank line into one space (a record of one empty field, skipped
/// above), and CRLF into LF, so every record's line is the file's.
struct NoBlankLines<R: BufRead> {
    inner: R,
    out: Vec<u8>,
    served: usize,
    last: u8,
    carriage_return: bool,
}

impl<R: BufRead> NoBlankLines<R> {
    fn new(inner: R) -> Self {
        Self {
            inner,
            out: Vec::new(),
            served: 0,
            last: b'\n',
            carriage_return: false,
        }
    }

    fn push(&mut self, byte: u8) {
        if byte == b'\n' && self.last == b'\n' {
            self.out.push(b' ');
        }
        self.out.push(byte);
        self.last = byte;
    }
}

impl<R: BufRead> Read for NoBlankLines<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.served == self.out.len() {
            self.out.clear();
            self.served = 0;
            let chunk = self.inner.fill_buf()?.to_vec();
            if chunk.is_empty() {
                if std::mem::take(&mut self.carriage_return) {
                    self.push(b'\r');
                    continue;
                }
                return Ok(0);
            }
            self.inner.consume(chunk.len());
            for byte in chunk {
                if std::mem::take(&mut self.carriage_return) && byte != b'\n' {
                    self.push(b'\r');
                }
                if byte == b'\r' {
                    self.carriage_return = true;
                } else {
                    self.push(byte);
                }
            }
        }
        let n = buf.len().min(self.out.len() - self.served);
        buf[..n].copy_from_slice(&self.out[self.served..self.served + n]);
        self.served += n;
        Ok(n)
    }
}

/// An audience given as a list: each entry a `phone` and the parameter columns. `line` is
/// the entry's index from 1.
pub fn from_list<'e>(
    entries: impl IntoIterator<Item = &'e HashMap<String, String>>,
    parameters: &[Parameter],
) -> Vec<Result<Recipient, Rejected>> {
    let mut checker = Checker::new(parameters);
    entries
        .into_iter()
        .enumerate()
        .map(|(index, entry)| {
            let line = index as u64 + 1;
            let fields: HashMap<String, &str> = entry
                .iter()
                .map(|(name, value)| (name.to_lowercase(), value.as_str()))
                .collect();
            let phone = fields.get(PHONE_COLUMN).copied().unwrap_or("");
            checker
                .check(line, phone, |column| fields.get(column).copied())
                .map_err(|error| Rejected { line, error })
        })
        .collect()
}

/// What an import found: counts of everything, the first [`MAX_REPORTED`] rows left out.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    pub accepted: u64,
    /// Rows left out, duplicates included.
    pub bad_rows: u64,
    pub duplicates: u64,
    pub rejected: Vec<Rejected>,
}

impl Report {
    pub fn reject(&mut self, rejected: Rejected) {
        self.bad_rows += 1;
        if matches!(rejected.error, RowError::Duplicate { .. }) {
            self.duplicates += 1;
        }
        if self.rejected.len() < MAX_REPORTED {
            self.rejected.push(rejected);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digits(given: &str) -> String {
        normalise(given)
            .unwrap_or_else(|e| panic!("{given}: {e}"))
            .digits
    }

    #[test]
    fn numbers_are_read_as_people_write_them() {
        for given in [
            "+55 (11) 98765-4321",
            "011987654321",
            "5511987654321",
            "(11) 98765-4321",
            "11987654321",
            "0055 11 98765 4321",
            "+55.11.98765.4321",
        ] {
            assert_eq!(digits(given), "5511987654321", "{given}");
        }
        assert_eq!(digits("1133334444"), "551133334444", "a landline");
        assert_eq!(digits("+351 912 345 678"), "351912345678");
        assert_eq!(digits("+1 415 555 0123"), "14155550123");
    }

    #[test]
    fn numbers_that_cannot_be_sent_to_say_why() {
        for (given, error) in [
            ("", NumberError::Empty),
            ("  ", NumberError::Empty),
            ("+55 11 9876x4321", NumberError::Characters),
            ("55+11987654321", NumberError::Characters),
            ("98765-4321", NumberError::TooShort),
            ("+1234567", NumberError::Length),
            ("+1234567890123456", NumberError::Length),
            ("+55 01 98765 4321", NumberError::Brazilian),
            ("+55 11 88765 4321", NumberError::Brazilian),
            ("+55 11 1876 4321", NumberError::Brazilian),
            ("55119876543", NumberError::Brazilian),
            ("0 11 9876 54321 11", NumberError::Brazilian),
        ] {
            assert_eq!(normalise(given), Err(error), "{given:?}");
        }
    }

    #[test]
    fn a_mobile_with_and_without_its_ninth_digit_is_one_customer() {
        let new = normalise("+55 61 98123-4567").unwrap();
        let old = normalise("+55 61 8123-4567").unwrap();
        assert_eq!(new.digits, "5561981234567");
        assert_eq!(old.digits, "556181234567", "sent as given");
        assert_eq!(new.canonical, old.canonical);
        assert_eq!(new.variants(), vec!["5561981234567", "556181234567"]);
        assert_eq!(old.variants(), vec!["556181234567", "5561981234567"]);
        let landline = normalise("+55 61 3123-4567").unwrap();
        assert_eq!(
            landline.canonical, landline.digits,
            "landlines have no variant"
        );
        assert_eq!(landline.variants(), vec!["556131234567"]);
        let foreign = normalise("+351 912 345 678").unwrap();
        assert_eq!(foreign.variants(), vec!["351912345678"]);
    }

    fn parse(csv: &str, parameters: &[Parameter]) -> (Vec<Recipient>, Report) {
        let mut recipients = Vec::new();
        let mut report = Report::default();
        for row in CsvAudience::new(csv.as_bytes(), parameters).unwrap() {
            match row.unwrap() {
                Ok(recipient) => {
                    report.accepted += 1;
                    recipients.push(recipient)
                }
                Err(rejected) => report.reject(rejected),
            }
        }
        (recipients, report)
    }

    fn column(name: &str) -> Parameter {
        Parameter::Column(name.into())
    }

    #[test]
    fn a_csv_gives_its_recipients_with_their_parameters_in_template_order() {
        let csv = "Phone,nome,cupom\n+55 11 98765-4321,Ana,ANA10\n(21) 99876-5432, Bia ,BIA5\n";
        let parameters = [
            column("Nome"),
            Parameter::Text("Loja A".into()),
            column("cupom"),
        ];
        let (recipients, report) = parse(csv, &parameters);
        assert_eq!(report.bad_rows, 0);
        assert_eq!(recipients.len(), 2);
        assert_eq!(recipients[0].line, 2);
        assert_eq!(recipients[0].number.digits, "5511987654321");
        assert_eq!(recipients[0].params, ["Ana", "Loja A", "ANA10"]);
        assert_eq!(recipients[1].line, 3);
        assert_eq!(recipients[1].params, ["Bia", "Loja A", "BIA5"]);
    }

    #[test]
    fn bad_rows_and_duplicates_are_reported_by_line_and_the_first_row_wins() {
        let csv = "\u{feff}phone;nome\n\
            +55 61 98123-4567;Ana\n\
            12345;Bia\n\
            +55 61 8123-4567;Ana de novo\n\
            11987654321;\n\
            11987654321;Caio;extra\n\
            \n\
            \"11 98888-7777\";\"Duda\tSilva\"\n\
            011987654321;Eva\n";
        let (recipients, report) = parse(csv, &[column("nome")]);
        let accepted: Vec<_> = recipients
            .iter()
            .map(|r| (r.line, r.number.digits.as_str()))
            .collect();
        assert_eq!(accepted, [(2, "5561981234567"), (9, "5511987654321")]);
        let rejected: Vec<_> = report
            .rejected
            .iter()
            .map(|r| (r.line, r.error.clone()))
            .collect();
        assert_eq!(
            rejected,
            [
                (
                    3,
                    RowError::Phone {
                        detail: NumberError::TooShort.to_string()
                    }
                ),
                (4, RowError::Duplicate { first_line: 2 }),
                (
                    5,
                    RowError::Parameter {
                        column: "nome".into(),
                        detail: "empty: the template needs it".into()
                    }
                ),
                (
                    6,
                    RowError::Fields {
                        found: 3,
                        expected: 2
                    }
                ),
                (
                    8,
                    RowError::Parameter {
                        column: "nome".into(),
                        detail: "WhatsApp takes no new line or tab in a parameter".into()
                    }
                ),
            ]
        );
        assert_eq!((report.bad_rows, report.duplicates), (5, 1));
        assert_eq!(
            report.rejected[1].error.to_string(),
            "the same customer as line 2"
        );
    }

    #[test]
    fn lines_are_the_files_whatever_the_line_ends_and_blank_lines() {
        let csv = "phone\r\n\r\n\r\n11987654321\r\n\"11 98765\n4322\"\n\n11987654323";
        let rows: Vec<_> = CsvAudience::new(csv.as_bytes(), &[])
            .unwrap()
            .map(|row| row.unwrap().map_or_else(|r| r.line, |r| r.line))
            .collect();
        assert_eq!(rows, [4, 5, 8]);
    }

    #[test]
    fn a_row_that_is_not_utf8_is_left_out_by_its_line() {
        let mut csv = b"phone,nome\n11987654321,Ana\n11987654322,".to_vec();
        csv.extend_from_slice(&[0xff, 0xfe, b'\n']);
        csv.extend_from_slice(b"11987654323,Caio\n");
        let rows: Vec<_> = CsvAudience::new(csv.as_slice(), &[column("nome")])
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(rows.len(), 3);
        assert_eq!(
            rows[1],
            Err(Rejected {
                line: 3,
                error: RowError::Encoding
            })
        );
        assert!(rows[2].is_ok());
    }

    #[test]
    fn a_header_without_phone_or_a_parameter_column_refuses_the_file() {
        let no_phone = CsvAudience::new("telefone,nome\n1,2\n".as_bytes(), &[]);
        assert!(matches!(no_phone, Err(AudienceError::NoPhoneColumn)));
        let parameters = [column("cupom")];
        let missing = CsvAudience::new("phone,nome\n".as_bytes(), &parameters);
        match missing {
            Err(error @ AudienceError::MissingColumn { .. }) => assert_eq!(
                error.to_string(),
                "parameter 1 is filled from column `cupom`, which the header row does not have"
            ),
            other => panic!("{:?}", other.err()),
        }
        assert!(matches!(
            CsvAudience::new("".as_bytes(), &[]),
            Err(AudienceError::Empty)
        ));
    }

    #[test]
    fn a_list_is_checked_like_a_file_by_index() {
        let entry = |phone: &str, nome: &str| {
            HashMap::from([
                ("phone".to_owned(), phone.to_owned()),
                ("nome".to_owned(), nome.to_owned()),
            ])
        };
        let entries = [
            entry("+5511987654321", "Ana"),
            entry("11987654321", "Ana"),
            entry("x", "Bia"),
        ];
        let rows = from_list(&entries, &[column("nome")]);
        assert_eq!(rows[0].as_ref().unwrap().params, ["Ana"]);
        assert_eq!(
            rows[1],
            Err(Rejected {
                line: 2,
                error: RowError::Duplicate { first_line: 1 }
            })
        );
        assert_eq!(rows[2].as_ref().unwrap_err().line, 3);
    }

    #[test]
    fn only_the_first_rejections_are_kept_one_by_one() {
        let mut report = Report::default();
        for line in 0..(MAX_REPORTED as u64 + 5) {
            report.reject(Rejected {
                line,
                error: RowError::Encoding,
            });
        }
        assert_eq!(report.bad_rows, MAX_REPORTED as u64 + 5);
        assert_eq!(report.rejected.len(), MAX_REPORTED);
    }
}
