//! Sample data for every template: what `nfp-gateway config check` renders
//! each template with, in every language, before the gateway meets real
//! mail; the tests render the same.

use crate::outbound::*;

fn party(id: &str, name: &str) -> PartyView {
    PartyView {
        id: id.into(),
        name: name.into(),
        email: format!("{}@example.org", id.to_lowercase()),
    }
}

/// Sample data for each template, and a string its output must contain.
pub fn sample(name: &str) -> (serde_json::Value, &'static str) {
    let gateway = "gateway@nfp-network.example".to_string();
    let v = |x: serde_json::Result<serde_json::Value>| x.unwrap();
    match name {
        "acknowledgement" => (
            v(serde_json::to_value(AcknowledgementData {
                reference: "BSM-2026-000042".into(),
                gateway,
                recipient: party("AT", "Bundesministerium für Inneres"),
                received_at: "2026-11-26T10:00:00Z".into(),
                signed_at: "2026-11-26T09:59:00Z".into(),
                kind: "assistance_request".into(),
                forwarded_to: vec![party("secretariat", "OSCE Secretariat")],
            })),
            "BSM-2026-000042",
        ),
        "quarantine_notice" => (
            v(serde_json::to_value(QuarantineNoticeData {
                gateway,
                recipient: party("secretariat", "OSCE Secretariat"),
                inbound_id: 17,
                received_at: "2026-11-26T10:00:00Z".into(),
                reason: "unknown_signer".into(),
                reason_text: "signed by a key that is not in the directory".into(),
                envelope_from: "mallory@evil.example".into(),
                size: 12345,
                transit_party: Some("AT".into()),
                transit_bytes: 205,
            })),
            "unknown_signer",
        ),
        "unreadable_message_notice" => (
            v(serde_json::to_value(UnreadableNoticeData {
                gateway,
                recipient: party("AT", "Bundesministerium für Inneres"),
                inbound_id: 17,
                received_at: "2026-11-26T10:00:00Z".into(),
                gateway_fingerprint: "C42147E7AD6F57570590F7845B1C04081B718CFC".into(),
            })),
            "OCB",
        ),
        "quarantine_digest" => (
            v(serde_json::to_value(QuarantineDigestData {
                gateway,
                recipient: party("secretariat", "OSCE Secretariat"),
                since: "2026-11-26T10:00:00Z".into(),
                until: "2026-11-26T11:00:00Z".into(),
                count: 997,
                by_reason: vec![DigestLine {
                    label: "sender_mismatch".into(),
                    text: "the From address does not belong to the signer".into(),
                    count: 997,
                }],
                by_sender: vec![DigestLine {
                    label: "nfp@interieur.fr.example".into(),
                    text: String::new(),
                    count: 997,
                }],
                more_senders: 0,
                first_id: 4,
                last_id: 1000,
            })),
            "997",
        ),
        "delivery_failure" => (
            v(serde_json::to_value(DeliveryFailureData {
                gateway,
                recipient: party("secretariat", "OSCE Secretariat"),
                reference: Some("BSM-2026-000042".into()),
                failed_recipient: party("FR", "Ministère de l'Intérieur"),
                attempts: 6,
                first_attempt_at: "2026-11-26T10:00:00Z".into(),
                last_error: "550 5.1.1 mailbox unavailable".into(),
            })),
            "fr@example.org",
        ),
        "no_usable_key" => (
            v(serde_json::to_value(NoUsableKeyData {
                gateway,
                recipient: party("secretariat", "OSCE Secretariat"),
                reference: Some("BSM-2026-000042".into()),
                unreachable: party("SE", "Polisen"),
                why: "certificate 0123 is expired".into(),
            })),
            "se@example.org",
        ),
        "contact_update_applied" => (
            v(serde_json::to_value(ContactUpdateAppliedData {
                reference: "BSM-2026-000042".into(),
                gateway,
                recipient: party("AT", "Bundesministerium für Inneres"),
                received_at: "2026-11-26T10:00:00Z".into(),
                changes: vec![crate::directory::Change {
                    field: "address".into(),
                    before: "Herrengasse 7, 1010 Wien".into(),
                    after: "Minoritenplatz 9, 1010 Wien".into(),
                }],
                new_certificate: Some("C42147E7AD6F57570590F7845B1C04081B718CFC".into()),
                previous_certificate_until: Some("2026-12-03T10:00:00Z".into()),
            })),
            "Minoritenplatz 9, 1010 Wien",
        ),
        "contact_update_unparsed" => (
            v(serde_json::to_value(ContactUpdateUnparsedData {
                reference: "BSM-2026-000042".into(),
                gateway,
                recipient: party("AT", "Bundesministerium für Inneres"),
                received_at: "2026-11-26T10:00:00Z".into(),
                why: "the vCard field X-FOO is not one the directory keeps".into(),
            })),
            "BSM-2026-000042",
        ),
        "circular_directory_change" => (
            v(serde_json::to_value(DirectoryCircularData {
                gateway,
                recipient: party("FR", "Ministère de l'Intérieur"),
                circular_id: 7,
                generated_at: "2026-11-26T10:10:00Z".into(),
                parties: vec![PartyChanges {
                    party: party("AT", "Bundesministerium für Inneres"),
                    change: "changed".into(),
                    at: "2026-11-26T10:00:00Z".into(),
                    by: "update by AT (BSM-2026-000042)".into(),
                    changes: vec![crate::directory::Change {
                        field: "address".into(),
                        before: "Herrengasse 7, 1010 Wien".into(),
                        after: "Minoritenplatz 9, 1010 Wien".into(),
                    }],
                }],
                undelivered: vec![Undelivered {
                    party: party("SE", "Polisen"),
                    why: "certificate expired".into(),
                }],
            })),
            "Minoritenplatz 9, 1010 Wien",
        ),
        "key_expiry_warning" | "key_expiry_report" => {
            let key = KeyStatus {
                party: party("SE", "Polisen"),
                fingerprint: "C42147E7AD6F57570590F7845B1C04081B718CFC".into(),
                expires_at: Some("2026-12-10T00:00:00Z".into()),
                days_left: Some(14),
                unusable: false,
                why: String::new(),
            };
            if name == "key_expiry_warning" {
                (
                    v(serde_json::to_value(KeyExpiryWarningData {
                        gateway,
                        recipient: party("SE", "Polisen"),
                        key,
                    })),
                    "C42147E7AD6F57570590F7845B1C04081B718CFC",
                )
            } else {
                let dead = KeyStatus {
                    party: party("PL", "Straż Graniczna"),
                    fingerprint: "A15F00A7FA020A3BE24C0935BBA0F0BA97E97A04".into(),
                    expires_at: Some("2026-11-20T00:00:00Z".into()),
                    days_left: Some(-6),
                    unusable: true,
                    why: "certificate is expired".into(),
                };
                (
                    v(serde_json::to_value(KeyExpiryReportData {
                        gateway,
                        recipient: party("secretariat", "OSCE Secretariat"),
                        generated_at: "2026-11-26T10:00:00Z".into(),
                        warning_days: 30,
                        keys: vec![key, dead],
                        own_key: Some(OwnKeyStatus {
                            fingerprint: "9E0D2C41B7A35F6E8D1C0B2A3F4E5D6C7B8A9F01".into(),
                            expires_at: Some("2026-12-20T00:00:00Z".into()),
                            findings: vec!["no valid signing key on 2026-12-26: extend the key or rotate it before then".into()],
                        }),
                    })),
                    "A15F00A7FA020A3BE24C0935BBA0F0BA97E97A04",
                )
            }
        }
        "case_reminder" | "case_overdue_note" => {
            let to_secretariat = name == "case_overdue_note";
            (
                v(serde_json::to_value(CaseReminderData {
                    gateway,
                    recipient: match to_secretariat {
                        true => party("secretariat", "OSCE Secretariat"),
                        false => party("AT", "Bundesministerium für Inneres"),
                    },
                    reference: "BSM-2026-000042".into(),
                    kind: "information_request".into(),
                    asker: party("FR", "Ministère de l'Intérieur"),
                    debtor: party("AT", "Bundesministerium für Inneres"),
                    opened_at: "2026-11-12".into(),
                    due_at: "2026-11-26".into(),
                    overdue: to_secretariat,
                    days: 3,
                })),
                "BSM-2026-000042",
            )
        }
        "command_result" => (
            v(serde_json::to_value(CommandResultData {
                gateway,
                recipient: party("secretariat", "OSCE Secretariat"),
                reference: "BSM-2026-000051".into(),
                received_at: "2026-11-26T10:00:00Z".into(),
                command: "EXTEND BSM-2026-000042 7D".into(),
                verb: "extend".into(),
                case_reference: "BSM-2026-000042".into(),
                done: true,
                refusal: String::new(),
                why: String::new(),
                state: "open".into(),
                due_at: "2026-12-03".into(),
                debtor: Some(party("AT", "Bundesministerium für Inneres")),
                circulated: 0,
                held: 0,
            })),
            "BSM-2026-000042",
        ),
        "rollcall_request" => (
            v(serde_json::to_value(RollcallRequestData {
                gateway,
                recipient: party("AT", "Bundesministerium für Inneres"),
                reference: "BSM-2026-000042".into(),
                due_at: "2026-12-26".into(),
                reminder: false,
                entry: vec![
                    EntryLine {
                        field: "address".into(),
                        value: "Minoritenplatz 9, 1010 Wien".into(),
                    },
                    EntryLine {
                        field: "contact Johann Berger".into(),
                        value: "Leiter; johann.berger@bmi.gv.at.example; +43 1 531 26".into(),
                    },
                ],
            })),
            "Minoritenplatz 9, 1010 Wien",
        ),
        "library_circular" => (
            v(serde_json::to_value(LibraryCircularData {
                gateway,
                recipient: party("FR", "Ministère de l'Intérieur"),
                reference: "BSM-2026-000042".into(),
                from: party("AT", "Bundesministerium für Inneres"),
                received_at: "2026-11-12".into(),
                language: "de".into(),
                topics: vec!["border_police".into(), "migration".into()],
                note: "Austria's joint patrols on international trains.\n\nSee in particular its section 3.".into(),
                original_name: "best-practice-BSM-2026-000042.eml".into(),
            })),
            "section 3",
        ),
        "weekly_report" => (v(serde_json::to_value(sample_report(gateway))), "BSM-2026-000042"),
        "rollcall_report" => (
            v(serde_json::to_value(RollcallReportData {
                gateway,
                recipient: party("secretariat", "OSCE Secretariat"),
                reference: "BSM-2026-000042".into(),
                started_at: "2026-11-26".into(),
                due_at: "2026-12-26".into(),
                asked: 4,
                confirmed: vec![party("AT", "Bundesministerium für Inneres")],
                updated: vec![party("FR", "Ministère de l'Intérieur")],
                silent: vec![party("IT", "Ministero dell'Interno")],
                held: vec![party("PL", "Straż Graniczna")],
                failed: Vec::new(),
            })),
            "Straż Graniczna",
        ),
        "gateway_key_rotation" => (
            v(serde_json::to_value(KeyRotationData {
                gateway,
                recipient: party("FR", "Ministère de l'Intérieur"),
                circular_id: 9,
                generated_at: "2026-11-26T10:00:00Z".into(),
                old_fingerprint: "AFB94082F279D25AC34B0B6DCA15524E72AA2781".into(),
                new_fingerprint: "3E5A1F0B9C7D2E4F6A8B0C1D2E3F4A5B6C7D8E9F".into(),
                new_expires_at: Some("2028-11-26T10:00:00Z".into()),
                certificate_file: "gateway-3E5A1F0B9C7D2E4F6A8B0C1D2E3F4A5B6C7D8E9F.asc".into(),
                undelivered: vec![Undelivered {
                    party: party("PL", "Straż Graniczna"),
                    why: "certificate expired".into(),
                }],
            })),
            "3E5A1F0B9C7D2E4F6A8B0C1D2E3F4A5B6C7D8E9F",
        ),
        "circular_announcement" => (
            v(serde_json::to_value(AnnouncementData {
                gateway,
                recipient: party("FR", "Ministère de l'Intérieur"),
                circular_id: 8,
                generated_at: "2026-11-26T10:00:00Z".into(),
                title: "Annual meeting of the NFP network, Vienna, 12-13 March".into(),
                text: "Dear colleagues, the Secretariat invites each NFP to its annual meeting."
                    .into(),
                undelivered: vec![Undelivered {
                    party: party("PL", "Straż Graniczna"),
                    why: "certificate expired".into(),
                }],
            })),
            "Annual meeting of the NFP network",
        ),
        _ => (
            v(serde_json::to_value(ForwardData {
                reference: "BSM-2026-000042".into(),
                gateway,
                recipient: party("secretariat", "OSCE Secretariat"),
                sender: party("AT", "Bundesministerium für Inneres"),
                fingerprint: "C42147E7AD6F57570590F7845B1C04081B718CFC".into(),
                signed_at: "2026-11-26T09:59:00Z".into(),
                received_at: "2026-11-26T10:00:00Z".into(),
                subject: "Schulung der Grenzpolizei".into(),
                kind: name.trim_start_matches("forward_").into(),
                topics: vec!["border_police".into()],
                language: "de".into(),
                target: Some(party("FR", "Ministère de l'Intérieur")),
                cited_reference: Some("BSM-2026-000007".into()),
                attachments: vec![
                    AttachmentView {
                        name: "bericht.pdf".into(),
                        content_type: "application/pdf".into(),
                        size: 615,
                        name_unprotected: false,
                    },
                    AttachmentView {
                        name: "lagebild.pdf".into(),
                        content_type: "application/pdf".into(),
                        size: 1210,
                        name_unprotected: true,
                    },
                ],
                why: "assistance requests go to the Secretariat".into(),
                original_name: "original-BSM-2026-000042.eml".into(),
                contact_update: Some(UpdateNote {
                    applied: true,
                    changes: vec![crate::directory::Change {
                        field: "address".into(),
                        before: "Herrengasse 7".into(),
                        after: "Minoritenplatz 9".into(),
                    }],
                    why: String::new(),
                }),
                discarded_bytes: 230,
                discarded_parts: 2,
                separately_signed: true,
            })),
            "BSM-2026-000042",
        ),
    }
}

/// A report with something in every section.
pub fn sample_report(gateway: String) -> crate::report::Report {
    use crate::report::*;
    Report {
        gateway,
        recipient: party("secretariat", "OSCE Secretariat"),
        since: "2026-11-23T00:00:00Z".into(),
        until: "2026-11-30T00:00:00Z".into(),
        since_day: "2026-11-23".into(),
        until_day: "2026-11-30".into(),
        days: 7,
        cases: CaseFigures {
            opened: 5,
            answered: 3,
            closed: 1,
            open: 4,
            overdue: 1,
        },
        overdue: vec![Overdue {
            reference: "BSM-2026-000042".into(),
            kind: "information_request".into(),
            asker: "FR".into(),
            debtor: "AT".into(),
            due_at: "2026-11-26".into(),
            days_overdue: 4,
        }],
        response_times: vec![ResponseTime {
            party: "AT".into(),
            kind: "information_request".into(),
            answered: 2,
            mean_days: 6.5,
            max_days: 9.0,
        }],
        rollcall: Some(RollcallFigures {
            reference: "BSM-2026-000040".into(),
            started_at: "2026-11-02".into(),
            due_at: "2026-12-02".into(),
            reported: false,
            standings: vec![
                Standing {
                    standing: "confirmed".into(),
                    count: 1,
                    parties: vec!["AT".into()],
                },
                Standing {
                    standing: "held".into(),
                    count: 1,
                    parties: vec!["PL".into()],
                },
            ],
        }),
        accepted: vec![Count {
            what: "assistance_request".into(),
            count: 4,
        }],
        quarantined: vec![Count {
            what: "unknown_signer".into(),
            count: 2,
        }],
        accepted_total: 4,
        quarantined_total: 2,
        held: 1,
        failed: 0,
        keys: vec![KeyStatus {
            party: party("PL", "Straż Graniczna"),
            fingerprint: "A15F00A7FA020A3BE24C0935BBA0F0BA97E97A04".into(),
            expires_at: Some("2026-11-20T00:00:00Z".into()),
            days_left: Some(-6),
            unusable: true,
            why: "certificate is expired".into(),
        }],
        own_key: None,
    }
}
