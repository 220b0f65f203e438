//! Contact updates by mail: what an NFP may change of its own entry, read
//! from vCards (4.0 or 3.0) or from a structured text form, validated.
//!
//! The text form: one field per line, `field: value`, the field's name in
//! any of the six languages (see [`FIELDS`]). `contact:` takes
//! `Name | Role | e-mail | phone` (e-mails and phones recognised by their
//! syntax, several allowed); `remove contact:` a name. A vCard describes one
//! contact person (KIND:individual, the default) or the NFP itself
//! (KIND:org: ADR, TZ, X-NFP-WORKING-HOURS). X-NFP-PARTY names the entry an
//! update is for; it must be the sender's. A new certificate travels as an
//! `application/pgp-keys` attachment, in a message signed with the current one.

use mail_parser::MimeHeaders;

use calcard::vcard::{VCard, VCardEntry, VCardParameterName, VCardValue};

use super::{Contact, Entry};
use crate::vocab::normalize;

/// What an update asks to change.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Update {
    /// The party the update names (X-NFP-PARTY), if it names one.
    pub target: Option<String>,
    pub address: Option<String>,
    pub timezone: Option<String>,
    pub working_hours: Option<String>,
    /// Contact persons to add or replace, by name.
    pub contacts: Vec<Contact>,
    pub remove_contacts: Vec<String>,
    /// A new certificate (armored or binary), public parts only.
    pub new_cert: Option<Vec<u8>>,
}

/// The outcome of reading an update.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    Update(Update),
    /// Why it could not be read: it goes to the Secretariat for manual handling.
    Unparseable(String),
}

/// Text-form field names, lower case, accents removed.
pub const FIELDS: &[(&str, &[&str])] = &[
    (
        "remove contact",
        &[
            "remove contact",
            "supprimer contact",
            "supprimer le contact",
            "kontakt entfernen",
            "rimuovi contatto",
            "удалить контакт",
            "eliminar contacto",
        ],
    ),
    (
        "address",
        &[
            "address",
            "postal address",
            "adresse",
            "adresse postale",
            "anschrift",
            "postanschrift",
            "indirizzo",
            "адрес",
            "почтовый адрес",
            "direccion",
            "direccion postal",
        ],
    ),
    (
        "timezone",
        &[
            "time zone",
            "timezone",
            "fuseau horaire",
            "zeitzone",
            "fuso orario",
            "часовой пояс",
            "zona horaria",
        ],
    ),
    (
        "working hours",
        &[
            "working hours",
            "heures de travail",
            "horaires",
            "arbeitszeiten",
            "dienstzeiten",
            "orario di lavoro",
            "часы работы",
            "horario de trabajo",
            "horario",
        ],
    ),
    (
        "contact",
        &[
            "contact",
            "contact person",
            "personne de contact",
            "kontakt",
            "kontaktperson",
            "ansprechpartner",
            "contatto",
            "referente",
            "контакт",
            "контактное лицо",
            "contacto",
            "persona de contacto",
        ],
    ),
];

/// Standard vCard properties that carry nothing the directory keeps; they
/// are ignored rather than refused (mail clients add them).
const IGNORED: &[&str] = &[
    "VERSION",
    "PRODID",
    "UID",
    "REV",
    "N",
    "NOTE",
    "LANG",
    "CATEGORIES",
    "SOURCE",
    "CLIENTPIDMAP",
    "X-MOZILLA-HTML",
];

/// Reads the update a signed message carries: its vCards, its certificate
/// attachment and the fields of its text.
pub fn parse(entity: &[u8], is_mime: bool) -> Parsed {
    let mut update = Update::default();
    let mut found = false;
    let mut text = String::new();
    if is_mime {
        let Some(msg) = mail_parser::MessageParser::default().parse(entity) else {
            return Parsed::Unparseable("the message cannot be read".into());
        };
        for part in msg.parts.iter() {
            let ct = crate::mime::mime_type(part);
            let name = part.attachment_name().unwrap_or("").to_ascii_lowercase();
            if matches!(
                ct.as_str(),
                "text/vcard" | "text/x-vcard" | "text/directory"
            ) || name.ends_with(".vcf")
            {
                if let Err(why) =
                    read_vcards(&String::from_utf8_lossy(part.contents()), &mut update)
                {
                    return Parsed::Unparseable(why);
                }
                found = true;
            } else if ct == "application/pgp-keys"
                || name.ends_with(".asc")
                    && part
                        .contents()
                        .starts_with(b"-----BEGIN PGP PUBLIC KEY BLOCK")
            {
                if update.new_cert.is_some() {
                    return Parsed::Unparseable("more than one certificate attached".into());
                }
                update.new_cert = Some(part.contents().to_vec());
                found = true;
            }
        }
        for i in 0..msg.text_body_count() {
            if let Some(t) = msg.body_text(i) {
                text.push_str(&t);
                text.push('\n');
            }
        }
    } else {
        text = String::from_utf8_lossy(entity).into_owned();
    }
    match read_text(&text, &mut update) {
        Ok(n) => found |= n > 0,
        Err(why) => return Parsed::Unparseable(why),
    }
    if !found {
        return Parsed::Unparseable("no vCard, certificate or recognised field".into());
    }
    if let Some(cert) = &update.new_cert {
        match crate::openpgp::whole::certificate(cert) {
            Ok(c) if c.is_tsk() => {
                return Parsed::Unparseable("the attached key holds secret key material".into())
            }
            Ok(_) => {}
            Err(e) => {
                return Parsed::Unparseable(format!(
                    "the attached certificate cannot be read: {e:#}"
                ))
            }
        }
    }
    Parsed::Update(update)
}

/// Applies an update to an entry (the certificate is handled by the caller).
pub fn apply(entry: &Entry, u: &Update) -> Entry {
    let mut e = entry.clone();
    if let Some(a) = &u.address {
        e.address = Some(a.clone());
    }
    if let Some(t) = &u.timezone {
        e.timezone = Some(t.clone());
    }
    if let Some(w) = &u.working_hours {
        e.working_hours = Some(w.clone());
    }
    e.contacts.retain(|c| {
        !u.remove_contacts
            .iter()
            .any(|r| r.eq_ignore_ascii_case(&c.name))
    });
    for c in &u.contacts {
        match e
            .contacts
            .iter_mut()
            .find(|old| old.name.eq_ignore_ascii_case(&c.name))
        {
            Some(old) => *old = c.clone(),
            None => e.contacts.push(c.clone()),
        }
    }
    e
}

/// A phone number in international form: `+`, then digits, spaces and `()-./`.
pub fn is_phone(s: &str) -> bool {
    let digits = s.chars().filter(char::is_ascii_digit).count();
    s.starts_with('+')
        && (6..=20).contains(&digits)
        && s[1..]
            .chars()
            .all(|c| c.is_ascii_digit() || " ()-./".contains(c))
}

/// The text form's fields; returns how many were found.
fn read_text(text: &str, u: &mut Update) -> Result<usize, String> {
    let mut n = 0;
    for line in text.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let key = normalize(key.trim().trim_start_matches(['-', '*', ' ']));
        let value = value.trim();
        // Both sides normalized: in `normalize`, й and ё lose their marks.
        let Some((field, _)) = FIELDS
            .iter()
            .find(|(_, names)| names.iter().any(|n| normalize(n) == key))
        else {
            continue;
        };
        if value.is_empty() {
            return Err(format!("the field {field:?} has no value"));
        }
        n += 1;
        match *field {
            "address" => u.address = Some(clean(value)),
            "timezone" => u.timezone = Some(clean(value)),
            "working hours" => u.working_hours = Some(clean(value)),
            "remove contact" => u.remove_contacts.push(clean(value)),
            _ => u.contacts.push(contact_from_pipes(value)?),
        }
    }
    Ok(n)
}

/// `Name | Role | e-mail | +phone ...`
fn contact_from_pipes(value: &str) -> Result<Contact, String> {
    let mut parts = value.split('|').map(str::trim).filter(|p| !p.is_empty());
    let name = clean(parts.next().unwrap_or(""));
    if name.is_empty() {
        return Err("a contact without a name".into());
    }
    let mut c = Contact {
        name,
        role: None,
        emails: vec![],
        phones: vec![],
    };
    for p in parts {
        if p.contains('@') {
            if !crate::address::is_plain_address(p) {
                return Err(format!("{p:?} is not an e-mail address"));
            }
            c.emails.push(p.to_ascii_lowercase());
        } else if p.starts_with('+') {
            if !is_phone(p) {
                return Err(format!("{p:?} is not a phone number in international form"));
            }
            c.phones.push(p.to_string());
        } else if c.role.is_none() {
            c.role = Some(clean(p));
        } else {
            return Err(format!(
                "{p:?} is neither a role, an e-mail address nor a phone number"
            ));
        }
    }
    Ok(c)
}

fn clean(s: &str) -> String {
    crate::outbound::render::clean_line(s, 300)
}

/// Reads every vCard of a text/vcard part into the update, with calcard's
/// parser in its strict mode (a line that is no property, or a card without
/// its END, is refused rather than skipped).
pub(super) fn read_vcards(text: &str, u: &mut Update) -> Result<(), String> {
    use calcard::{Entry, Parser};
    let mut parser = Parser::new(text).strict();
    let mut cards = 0;
    loop {
        match parser.entry() {
            Entry::VCard(card) => {
                cards += 1;
                if cards > 50 {
                    return Err("more than 50 vCards".into());
                }
                read_card(&card, u)?;
            }
            Entry::Eof => break,
            Entry::InvalidLine(line) => {
                // calcard's strict iCalendar reader stops at a nested
                // component's BEGIN (a calendar's VEVENT).
                let begin = line
                    .get(..5)
                    .is_some_and(|b| b.eq_ignore_ascii_case("begin"));
                return Err(match begin {
                    true => "a calendar, not a vCard".to_string(),
                    false => format!("a vCard line that is no property: {:?}", clean(&line)),
                });
            }
            Entry::UnterminatedComponent(_) => return Err("a vCard without END:VCARD".into()),
            Entry::ICalendar(_) => return Err("an iCalendar object, not a vCard".into()),
            _ => return Err("a vCard attachment that cannot be read".into()),
        }
    }
    if cards == 0 {
        return Err("an empty vCard attachment".into());
    }
    Ok(())
}

/// A property's value as text: its components joined as vCard writes them
/// (`;` between fields, `,` within one); a typed value (a date, an offset)
/// as calcard writes it, which is only shown in a refusal.
fn text_of(e: &VCardEntry) -> String {
    let texts: Option<Vec<String>> = e
        .values
        .iter()
        .map(|v| match v {
            VCardValue::Component(items) => Some(items.join(",")),
            v => v.as_text().map(str::to_string),
        })
        .collect();
    if let Some(texts) = texts {
        return texts.join(";");
    }
    let bare = VCardEntry {
        group: None,
        name: e.name.clone(),
        params: Vec::new(),
        values: e.values.clone(),
    };
    let mut line = String::new();
    let _ = bare.write_to(&mut line, true);
    let line = line.replace("\r\n ", "");
    line.trim_end()
        .split_once(':')
        .map(|(_, v)| v.to_string())
        .unwrap_or_default()
}

fn read_card(card: &VCard, u: &mut Update) -> Result<(), String> {
    // Property names as the directory knows them (upper case, no group),
    // each with its value as text, read once.
    let props: Vec<(String, &VCardEntry, String)> = card
        .entries
        .iter()
        .map(|e| {
            let text = text_of(e).trim().to_string();
            (e.name.as_str().to_ascii_uppercase(), e, text)
        })
        .collect();
    let get = |n: &str| {
        props
            .iter()
            .find(|(k, _, _)| k == n)
            .map(|(_, _, text)| text.clone())
    };
    if let Some(target) = get("X-NFP-PARTY") {
        let target = clean(&target);
        if u.target.as_ref().is_some_and(|t| *t != target) {
            return Err("the vCards name different parties".into());
        }
        u.target = Some(target);
    }
    let org = get("KIND").is_some_and(|k| k.eq_ignore_ascii_case("org"));
    let mut contact = Contact {
        name: clean(&get("FN").unwrap_or_default()),
        role: None,
        emails: vec![],
        phones: vec![],
    };
    for (name, entry, value) in &props {
        let value = value.as_str();
        match name.as_str() {
            "FN" | "KIND" | "X-NFP-PARTY" | "ORG" => {}
            "TITLE" | "ROLE" => {
                if !value.is_empty() {
                    contact.role = Some(clean(value));
                }
            }
            "EMAIL" => {
                if !crate::address::is_plain_address(value) {
                    return Err(format!("{:?} is not an e-mail address", clean(value)));
                }
                contact.emails.push(value.to_ascii_lowercase());
            }
            "TEL" => {
                let number = value
                    .strip_prefix("tel:")
                    .unwrap_or(value)
                    .replace('-', " ");
                if !is_phone(&number) {
                    return Err(format!(
                        "{:?} is not a phone number in international form",
                        clean(value)
                    ));
                }
                contact.phones.push(number);
            }
            "ADR" if org => {
                // LABEL="a, b" is one parameter; calcard splits an unquoted
                // LABEL=a,b in two, joined again here.
                let label: Vec<&str> = entry
                    .params
                    .iter()
                    .filter(|p| p.name == VCardParameterName::Label)
                    .filter_map(|p| p.value.as_text())
                    .collect();
                let structured: Vec<String> = entry
                    .values
                    .iter()
                    .filter_map(|v| match v {
                        VCardValue::Component(items) => Some(items.join(", ")),
                        v => v.as_text().map(str::to_string),
                    })
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect();
                u.address = Some(clean(&match label.is_empty() {
                    false => label.join(","),
                    true => structured.join(", "),
                }));
            }
            "ADR" => {}
            // calcard reads a UTC offset as a time (minutes and "+00:00"
            // do not come back as written): only a zone's name is kept.
            "TZ" if org => match entry.values.as_slice() {
                [VCardValue::Text(zone)] => u.timezone = Some(clean(zone.trim())),
                _ => {
                    return Err(format!(
                        "TZ {:?} is an offset: give the time zone's name (Europe/Vienna)",
                        clean(value)
                    ))
                }
            },
            "X-NFP-WORKING-HOURS" if org => u.working_hours = Some(clean(value)),
            "X-NFP-REMOVE" => u.remove_contacts.push(clean(value)),
            n if IGNORED.contains(&n) => {}
            n => {
                return Err(format!(
                    "the vCard field {} is not one the directory keeps",
                    clean(n)
                ))
            }
        }
    }
    if !org {
        if contact.name.is_empty() {
            return Err("a contact vCard without FN".into());
        }
        if !(contact.emails.is_empty() && contact.phones.is_empty() && contact.role.is_none()) {
            u.contacts.push(contact);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const VCARD: &str = "BEGIN:VCARD\r\nVERSION:4.0\r\nFN:Anna Berger\r\nTITLE:Head of the NFP\r\nEMAIL;TYPE=work:anna.berger@bmi.at.example\r\nTEL;VALUE=uri;TYPE=work:tel:+43-1-555-1234\r\nX-NFP-PARTY:AT\r\nEND:VCARD\r\nBEGIN:VCARD\r\nVERSION:4.0\r\nKIND:org\r\nFN:NFP Austria\r\nADR;LABEL=\"Minoritenplatz 9, 1010 Wien\":;;Minoritenplatz 9;Wien;;1010;Austria\r\nEND:VCARD\r\n";

    fn mime(parts: &str) -> Vec<u8> {
        format!("Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\n[CONTACT UPDATE]\r\n--b\r\nContent-Type: text/vcard; name=\"a.vcf\"\r\n\r\n{parts}--b--\r\n").into_bytes()
    }

    #[test]
    fn vcards_give_contacts_and_the_address() {
        let Parsed::Update(u) = parse(&mime(VCARD), true) else {
            panic!("unparseable")
        };
        assert_eq!(u.target.as_deref(), Some("AT"));
        assert_eq!(u.address.as_deref(), Some("Minoritenplatz 9, 1010 Wien"));
        assert_eq!(u.contacts.len(), 1);
        assert_eq!(u.contacts[0].phones, vec!["+43 1 555 1234"]);
        assert_eq!(u.contacts[0].role.as_deref(), Some("Head of the NFP"));
    }

    #[test]
    fn vcard_3_with_folded_lines_and_types() {
        let v3 = "BEGIN:VCARD\r\nVERSION:3.0\r\nN:Rossi;Mario;;;\r\nFN:Mario Rossi\r\nTITLE:Ufficiale di collegamento\r\nTEL;TYPE=WORK,VOICE:+39 06 4651 00\r\n 12\r\nEMAIL;TYPE=INTERNET:mario.rossi@interno.it.example\r\nPRODID:-//Apple Inc.//Mac OS X//EN\r\nEND:VCARD\r\n";
        let Parsed::Update(u) = parse(&mime(v3), true) else {
            panic!("unparseable")
        };
        assert_eq!(u.contacts[0].name, "Mario Rossi");
        assert_eq!(u.contacts[0].phones, vec!["+39 06 4651 0012"]);
        assert_eq!(u.contacts[0].emails, vec!["mario.rossi@interno.it.example"]);
    }

    #[test]
    fn invalid_values_and_unknown_fields_are_refused() {
        let bad_mail = VCARD.replace("anna.berger@bmi.at.example", "not-an-address");
        assert!(
            matches!(parse(&mime(&bad_mail), true), Parsed::Unparseable(w) if w.contains("e-mail"))
        );
        let bad_phone = VCARD.replace("tel:+43-1-555-1234", "0043 1 555");
        assert!(
            matches!(parse(&mime(&bad_phone), true), Parsed::Unparseable(w) if w.contains("phone"))
        );
        let unknown = VCARD.replace("X-NFP-PARTY:AT", "X-SECRET:1");
        assert!(
            matches!(parse(&mime(&unknown), true), Parsed::Unparseable(w) if w.contains("X-SECRET"))
        );
    }

    /// Shapes real clients write that the hand-made parser did not read:
    /// LF line ends, a group prefix (Apple's item1.), a quoted LABEL holding
    /// `:` and `;`, an unquoted LABEL with a comma; TZ as a zone's name.
    #[test]
    fn vcards_as_clients_write_them() {
        let card = "BEGIN:VCARD\nVERSION:3.0\nFN:Jan Nowak\nitem1.EMAIL;type=INTERNET;type=pref:Jan.Nowak@strazgraniczna.pl.example\nTEL;TYPE=CELL:+48 22 555 01 02\nX-NFP-PARTY:PL\nEND:VCARD\nBEGIN:VCARD\nVERSION:4.0\nKIND:org\nFN:NFP Poland\nADR;LABEL=\"ul. Podchorążych 38; 00-463 Warszawa: Polska\":;;ul. Podchorążych 38;Warszawa;;00-463;Polska\nTZ:Europe/Warsaw\nEND:VCARD\n";
        let Parsed::Update(u) = parse(&mime(card), true) else {
            panic!("unparseable")
        };
        assert_eq!(u.target.as_deref(), Some("PL"));
        assert_eq!(
            u.contacts[0].emails,
            vec!["jan.nowak@strazgraniczna.pl.example"]
        );
        assert_eq!(u.contacts[0].phones, vec!["+48 22 555 01 02"]);
        assert_eq!(
            u.address.as_deref(),
            Some("ul. Podchorążych 38; 00-463 Warszawa: Polska")
        );
        assert_eq!(u.timezone.as_deref(), Some("Europe/Warsaw"));
        // An offset is refused, not stored shortened ("+05:30" would come
        // back from calcard as "+05").
        for offset in ["+01:00", "+05:30", "+00:00"] {
            let card = card.replace("TZ:Europe/Warsaw", &format!("TZ:{offset}"));
            assert!(
                matches!(parse(&mime(&card), true), Parsed::Unparseable(w) if w.contains("time zone's name")),
                "{offset}"
            );
        }
        let unquoted = card.replace(
            "ADR;LABEL=\"ul. Podchorążych 38; 00-463 Warszawa: Polska\"",
            "ADR;LABEL=Warszawa,Polska",
        );
        let Parsed::Update(u) = parse(&mime(&unquoted), true) else {
            panic!("unparseable")
        };
        assert_eq!(u.address.as_deref(), Some("Warszawa,Polska"));
    }

    /// What a forger would try through a vCard is refused, with a reason:
    /// a property name that smuggles a line in (an escaped newline, which
    /// calcard unescapes in names), a card cut short, a line that is no
    /// property, an iCalendar object, a flood of cards.
    #[test]
    fn vcard_tricks_are_refused() {
        let injected = VCARD.replace(
            "X-NFP-PARTY:AT",
            "X-NFP-PARTY:AT\r\nX-A\\nEMAIL\\:evil@x.example:v",
        );
        match parse(&mime(&injected), true) {
            Parsed::Unparseable(why) => {
                assert!(why.contains("is not one the directory keeps"), "{why}");
                assert!(!why.contains('\n'), "{why:?}");
            }
            _ => panic!("a name holding a newline was read"),
        }
        let cut = VCARD.trim_end_matches("END:VCARD\r\n");
        assert!(
            matches!(parse(&mime(cut), true), Parsed::Unparseable(w) if w.contains("without END")),
            "a card without END"
        );
        let no_colon = VCARD.replace("TITLE:Head of the NFP", "TITLE Head of the NFP");
        assert!(
            matches!(parse(&mime(&no_colon), true), Parsed::Unparseable(w) if w.contains("no property")),
            "a line without a colon"
        );
        let ical = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nEND:VCALENDAR\r\n";
        assert!(
            matches!(parse(&mime(ical), true), Parsed::Unparseable(w) if w.contains("iCalendar"))
        );
        let event = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\nSUMMARY:x\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";
        assert!(matches!(parse(&mime(event), true),
            Parsed::Unparseable(w) if w.contains("a calendar, not a vCard")));
        // A stray line in another script is refused, not sliced mid-character.
        let stray = VCARD.replace("TITLE:Head of the NFP", "Начальник отдела");
        assert!(
            matches!(parse(&mime(&stray), true), Parsed::Unparseable(w) if w.contains("no property"))
        );
        let empty_title = VCARD.replace("TITLE:Head of the NFP", "TITLE;x");
        let Parsed::Update(u) = parse(&mime(&empty_title), true) else {
            panic!("unparseable")
        };
        assert_eq!(u.contacts[0].role, None);
        let one = "BEGIN:VCARD\r\nVERSION:4.0\r\nFN:A\r\nX-NFP-REMOVE:B\r\nEND:VCARD\r\n";
        let flood = one.repeat(51);
        assert!(
            matches!(parse(&mime(&flood), true), Parsed::Unparseable(w) if w.contains("more than 50"))
        );
        assert!(matches!(
            parse(&mime(&one.repeat(50)), true),
            Parsed::Update(_)
        ));
    }

    #[test]
    fn the_text_form_in_several_languages() {
        let text = "[MISE À JOUR DES COORDONNÉES]\nBonjour,\nAdresse : 2 place Beauvau, Paris\nContact : Jean Dupont | Chef du point de contact | jean.dupont@interieur.fr.example | +33 1 99 00 41 20\nSupprimer contact : Marie Curie\n";
        let Parsed::Update(u) = parse(text.as_bytes(), false) else {
            panic!("unparseable")
        };
        assert_eq!(u.address.as_deref(), Some("2 place Beauvau, Paris"));
        assert_eq!(
            u.contacts[0].emails,
            vec!["jean.dupont@interieur.fr.example"]
        );
        assert_eq!(u.remove_contacts, vec!["Marie Curie"]);
        let ru = "Адрес: ул. Житная, 16, Москва\nЧасовой пояс: Europe/Moscow\n";
        assert!(
            matches!(parse(ru.as_bytes(), false), Parsed::Update(u) if u.address.is_some() && u.timezone.is_some())
        );
        assert!(matches!(
            parse(b"Hello, nothing here.", false),
            Parsed::Unparseable(_)
        ));
    }

    #[test]
    fn apply_replaces_contacts_by_name() {
        let e: Entry = serde_json::from_str(r#"{"id":"AT","kind":"nfp","name":"N","email":"n@at.example","language":"de","contacts":[{"name":"Anna Berger","emails":["old@at.example"]},{"name":"Marie Curie"}],"cert":"F"}"#).unwrap();
        let u = Update {
            contacts: vec![Contact {
                name: "anna berger".into(),
                role: None,
                emails: vec!["new@at.example".into()],
                phones: vec![],
            }],
            remove_contacts: vec!["Marie Curie".into()],
            ..Update::default()
        };
        let after = apply(&e, &u);
        assert_eq!(after.contacts.len(), 1);
        assert_eq!(after.contacts[0].emails, vec!["new@at.example"]);
    }
}
