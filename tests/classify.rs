//! Classification of prose (issue 14): the hard cases of every language, the
//! labelled corpus held to its numbers, and the State names held to the CLDR.

mod common;

use common::corpus;
use nfp_gateway::classify::rules::Rules;
use nfp_gateway::classify::{Classification, Kind, Topic};

fn rules() -> &'static Rules {
    static R: std::sync::OnceLock<Rules> = std::sync::OnceLock::new();
    R.get_or_init(Rules::builtin)
}

fn directory() -> &'static nfp_gateway::directory::Directory {
    static D: std::sync::OnceLock<nfp_gateway::directory::Directory> = std::sync::OnceLock::new();
    D.get_or_init(corpus::directory)
}

/// A text from `from` (a State's NFP), unlabelled.
fn message(from: &str, subject: Option<&str>, text: &str) -> corpus::Message {
    corpus::Message {
        id: "test".into(),
        language: nfp_gateway::classify::Language::En,
        from: from.into(),
        kind: Kind::Unclassified,
        topics: Vec::new(),
        target: None,
        subject: subject.map(str::to_string),
        text: text.into(),
        held_out: false,
    }
}

/// The gateway's reading of a text from `from` (a State's NFP).
fn read(from: &str, subject: Option<&str>, text: &str) -> Classification {
    corpus::classify_one(&message(from, subject, text), rules(), directory())
}

/// An acknowledgement of receipt of the request `reference`: no reply.
#[track_caller]
fn assert_acknowledges(c: &Classification, reference: &str) {
    assert_kind(c, Kind::Unclassified);
    assert!(c.why.contains("acknowledgement of receipt"), "{}", c.why);
    assert_eq!(c.cited_reference.as_deref(), Some(reference));
}

#[track_caller]
fn assert_kind(c: &Classification, kind: Kind) {
    assert_eq!(c.kind, kind, "{}", c.why);
}

/// A text without a subject read as `kind`, by evidence whose explanation
/// holds `evidence` (a rule's words, a note).
#[track_caller]
fn assert_read_by(from: &str, text: &str, kind: Kind, evidence: &str) {
    let c = read(from, None, text);
    assert_kind(&c, kind);
    assert!(c.why.contains(evidence), "{}", c.why);
}

/// A text without a subject read as `kind`, with `words` among the rules'
/// phrases that weighed (not among the model's features).
#[track_caller]
fn assert_read_by_rules(from: &str, text: &str, kind: Kind, words: &str) {
    let c = read(from, None, text);
    assert_kind(&c, kind);
    let rules = c.why.split("words:").skip(1).collect::<String>();
    assert!(rules.contains(words), "{}", c.why);
}

/// A short English message that letter trigrams take for French: its
/// stop words say English, and the English rules read it.
#[test]
fn a_short_english_message_is_read_in_english() {
    let c = read(
        "GE",
        None,
        "Dear colleagues,\n\nWe request assistance in training our new maritime border unit.\n",
    );
    assert_eq!(c.language, nfp_gateway::classify::Language::En);
    assert_kind(&c, Kind::AssistanceRequest);
}

/// Thanks for a course held at the sender's request: the model reads the
/// course's words of most of these as an assistance request, but nothing
/// is asked. A request after the thanks is still read.
#[test]
fn thanks_for_a_course_held_are_no_request() {
    for (from, text) in [
        ("TJ", "Dear colleagues,\n\nAllow me to express our sincere gratitude to the OSCE Secretariat and to the experts from\nLithuania for the training course on risk analysis held in Dushanbe last week at the request of\nour Border Troops. The 18 officers who took part found the exercises very practical.\n\nBest regards,\nRustam\n"),
        ("BE", "Madame, Monsieur,\n\nNous tenons à adresser nos vifs remerciements au Secrétariat de l'OSCE et aux formateurs\npour l'atelier sur la détection de la fraude documentaire organisé à Bruxelles en mars, à notre\ndemande. Les participants ont beaucoup apprécié les exercices pratiques.\n\nCordialement,\nLuc\n"),
        ("AT", "Sehr geehrte Damen und Herren,\n\nwir möchten dem OSZE-Sekretariat und den Experten aus Slowenien unseren aufrichtigen Dank für\nden Lehrgang zur Risikoanalyse aussprechen, der im März auf unser Ersuchen in Wien stattfand.\nDie Teilnehmenden waren von den praktischen Übungen sehr angetan.\n\nMit freundlichen Grüßen\nAnna\n"),
        ("SM", "Gentili colleghi,\n\ndesideriamo esprimere i nostri più sentiti ringraziamenti al Segretariato OSCE e agli esperti\nper il corso di formazione sull'analisi dei rischi svoltosi a San Marino a marzo, su nostra\nrichiesta. I partecipanti hanno apprezzato molto le esercitazioni pratiche.\n\nCordiali saluti,\nMarco\n"),
        ("KG", "Уважаемые коллеги!\n\nВыражаем искреннюю благодарность Секретариату ОБСЕ и экспертам из Латвии за учебный курс по\nанализу рисков, проведенный в Бишкеке в марте по нашей просьбе. Участники высоко оценили\nпрактические занятия.\n\nС уважением,\nАйбек\n"),
        ("ES", "Estimados colegas:\n\nQueremos expresar nuestro más sincero agradecimiento a la Secretaría de la OSCE y a los expertos\npor el curso de formación sobre análisis de riesgos celebrado en Madrid en marzo, a petición\nnuestra. Los participantes valoraron mucho los ejercicios prácticos.\n\nUn saludo,\nLucía\n"),
    ] {
        assert_kind(&read(from, None, text), Kind::Unclassified);
    }
    let c = read(
        "TJ",
        None,
        "Dear colleagues,\n\nAllow me to express our sincere gratitude for the training course on risk analysis held in\nDushanbe last week. Building on it, we request the support of the Secretariat for a second\ncourse on profiling at the airport in the autumn.\n\nBest regards,\nRustam\n",
    );
    assert_kind(&c, Kind::AssistanceRequest);
}

/// A request for a workshop's material in the official register ("we
/// would be grateful to the Secretariat for providing us with its report")
/// that closes with thanks for the OSCE's support, courses and equipment:
/// the thanks ask for none of these, and take the model's assistance
/// request away; the rules' request for information, the model's second
/// reading, stands. Before, the rules read the thanks' words as an
/// assistance request, or a close call, and the message was left
/// unclassified or read as an assistance request.
#[test]
fn thanks_closing_a_request_for_material_leave_the_request() {
    for (from, text) in [
        ("MD", "Dear Sir/Madam,\n\nThe Border Police of the Republic of Moldova, acting as National Focal Point, presents its\ncompliments to the OSCE Secretariat.\n\nOur representative could attend only the first day of the Regional Workshop on Countering Trafficking\nof Firearms held in Vienna in November 2025. We would be grateful to the Secretariat for\nproviding us with the final report of the workshop and, if possible, the presentations of the\nspeakers, for further dissemination to our regional units.\n\nThe materials can be sent to the e-mail of the NFP: nfp@border.gov.md.\n\nTaking this opportunity, we would like to express our gratitude for the continuous support of\nthe OSCE, for the training courses, the expert visits and the equipment provided to our\nservice over the years.\n\nSincerely,\nHead of International Cooperation Directorate\n"),
        ("GE", "Dear colleagues,\n\nThe Border Police of Georgia expresses its respect to the OSCE Secretariat. Our analysts could\nnot attend the seminar on risk analysis in Tbilisi; we would be grateful to the Secretariat for\nproviding us with its report and the presentations of the speakers. The materials can be sent\nto nfp@bpg.gov.ge.\n\nWe take this opportunity to express our deep gratitude to the OSCE for the support, the training\nand the equipment provided to our service, which our officers greatly appreciate.\n\nSincerely,\nNino\n"),
    ] {
        assert_read_by(from, text, Kind::InformationRequest, "the rules' kind is the model's second");
    }
}

/// Chasing an unanswered request, between colleagues, without a word
/// meaning "reminder": coming back to it, asking for news, saying the data
/// are still missing. Each is read by the rules' words for it.
#[test]
fn chasing_an_unanswered_request_is_a_request_for_information() {
    for (from, text, evidence) in [
        ("LT", "Hi Marta,\n\nSorry, chasing again: any news on the overstayer figures for 2025? Even a rough\nnumber per airport would do, our minister wants it on Friday.\n\nCheers,\nTomas\n", "any news"),
        ("BE", "Salut Luc,\n\nJe reviens vers toi avec ma demande de mars sur les cartes de séjour falsifiées : il me\nmanque toujours vos chiffres pour 2025, et notre note pour le cabinet part lundi.\n\nBises,\nSophie\n", "reviens"),
        ("AT", "Hallo Jan,\n\nich hake nochmal nach wegen der Zahlen zu den Zurückweisungen am Flughafen: gibt es schon\nNeuigkeiten? Ein grober Wert pro Quartal würde reichen, unser Lagebericht geht Ende Mai raus.\n\nLG\nMarkus\n", "hake"),
        ("SI", "Ciao Paolo,\n\ntorno sulla mia richiesta di febbraio sui sequestri di tabacco al porto di Capodistria:\nci sono novità? Anche solo una stima ci aiuterebbe.\n\nUn abbraccio,\nMaja\n", "torno"),
        ("PT", "Hola Javier:\n\nPerdona que insista: ¿alguna novedad sobre las denegaciones de entrada en Barajas? El\ninforme sale el jueves y es lo único que me falta.\n\nUn abrazo,\nJoana\n", "insista"),
        ("KG", "Айгуль, привет!\n\nВозвращаюсь к моему запросу по статистике задержаний на участке Кызыл-Кия. Пока так и\nне получили данные, а отчет сдаем в пятницу. Хватит даже цифр за год.\n\nСпасибо!\nБакыт\n", "не получили"),
    ] {
        assert_read_by_rules(from, text, Kind::InformationRequest, evidence);
    }
}

/// An assistance request asked as a question after thanks for a course
/// held ("could you consider the possibility of organising a second
/// module?"): the thanks are no request, the question is.
#[test]
fn an_assistance_request_asked_after_thanks_for_a_course() {
    for (from, text, evidence) in [
        ("UZ", "Уважаемый Андрей!\n\nПозвольте выразить искреннюю благодарность Секретариату ОБСЕ за проведение в марте\nкурса по выявлению поддельных документов для наших пограничников.\n\nНе могли бы Вы рассмотреть возможность организовать в 2026 году такой же курс для\nсотрудников пунктов пропуска в Ферганской долине? Помещение и перевод мы обеспечим.\n\nС уважением,\nДильшод\n", "рассмотреть"),
        ("LU", "Madame,\n\nNous tenons à exprimer notre sincère gratitude au Secrétariat pour l'atelier sur la fraude\ndocumentaire tenu à Luxembourg en avril ; les participants l'ont beaucoup apprécié.\n\nLe Secrétariat pourrait-il envisager l'organisation d'un second module à Esch-sur-Alzette, pour les\nagents de la Police grand-ducale ? Nous mettrions la salle et le transport à disposition.\n\nVeuillez agréer, Madame, l'expression de notre haute considération.\nKarim\n", "envisager"),
        ("AL", "Gentile dottoressa,\n\ndesideriamo esprimere i nostri più sentiti ringraziamenti per il corso sui controlli di\nfrontiera svoltosi a Durazzo a febbraio, molto apprezzato dai partecipanti.\n\nSarebbe possibile per il Segretariato prendere in considerazione l'organizzazione di un corso\navanzato a Valona in autunno? Da parte nostra metteremmo a disposizione l'aula.\n\nCon osservanza,\nArben\n", "considerazione"),
    ] {
        assert_read_by_rules(from, text, Kind::AssistanceRequest, evidence);
    }
}

/// A reply that recalls the acknowledgement sent before it ("further to
/// our acknowledgement of 7 April, here is our answer") acknowledges
/// nothing now: it is read as the reply it is. A text that acknowledges
/// receipt still is no reply.
#[test]
fn a_reply_that_recalls_its_acknowledgement_is_a_reply() {
    for (from, subject, text) in [
        ("IE", "RE: BSM-2026-000311 refusals of entry at sea ports", "Dear colleagues,\n\nFurther to our acknowledgement of 7 April, please find below the information requested.\n\n1. In 2025 the Garda National Immigration Bureau refused entry to 212 passengers at Dublin\nand Rosslare ports, mostly for lack of a valid visa.\n2. Refused passengers are returned on the same ferry operator's next sailing.\n\nKind regards,\nAoife\n"),
        ("LU", "RE: BSM-2026-000287 - contrôles des autocars", "Bonjour,\n\nSuite à notre accusé de réception du 3 mars, voici les éléments de réponse de la Police\ngrand-ducale : les autocars en provenance de pays tiers sont contrôlés de manière ciblée sur\nl'A3, sur la base d'analyses de risque ; 640 autocars ont été contrôlés en 2025.\n\nCordialement,\nPaul\n"),
        ("SM", "R: BSM-2026-000245 permessi di soggiorno", "Gentili colleghi,\n\nfacendo seguito alla nostra e-mail del 3 marzo, con la quale vi avevamo confermato la\nricezione della vostra richiesta, vi trasmettiamo i dati richiesti: al 31 dicembre 2025\nrisultavano validi 1.142 permessi di soggiorno rilasciati a cittadini di Paesi terzi.\n\nCordiali saluti,\nLuca\n"),
        ("AM", "Re: BSM-2026-000198 отказы во въезде", "Уважаемые коллеги,\n\nв дополнение к нашему письму от 7 апреля, которым мы подтвердили получение запроса,\nнаправляем запрошенные сведения: в 2025 году на пунктах пропуска Республики Армения\nвынесено 1 517 решений об отказе во въезде.\n\nС уважением,\nА. Саркисян\n"),
    ] {
        let c = read(from, Some(subject), text);
        assert_kind(&c, Kind::InformationReply);
        assert!(!c.why.contains("acknowledgement of receipt"), "{}", c.why);
    }
    let c = read(
        "IE",
        Some("RE: BSM-2026-000311 refusals of entry at sea ports"),
        "Dear colleagues,\n\nWe acknowledge receipt of your request of 3 April; our answer will follow next week.\n\nKind regards,\nAoife\n",
    );
    assert_acknowledges(&c, "BSM-2026-000311");
}

/// Inflection, person, tense and synonyms: the rule's words by their stems.
#[test]
fn requests_for_assistance_in_other_words_and_persons() {
    for (from, text) in [
        ("GB", "Dear colleagues,\n\nThe Ministry of the Interior requests the support of the OSCE Secretariat in training\nthirty officers of the new mobile units.\n"),
        ("FR", "Madame, Monsieur,\n\nLe ministère de l'Intérieur sollicite l'appui du Secrétariat pour la formation\nde ses agents aux contrôles documentaires.\n"),
        ("DE", "Sehr geehrte Damen und Herren,\n\ndas Bundesministerium bittet das Sekretariat um Unterstützung bei der Ausbildung\nvon Diensthundeführern.\n"),
        ("IT", "Gentili colleghi,\n\nil Ministero chiede un sostegno al Segretariato per la formazione del personale\nimpiegato ai valichi.\n"),
        ("KZ", "Уважаемые коллеги!\n\nМинистерство внутренних дел просит оказать содействие в организации обучения\nсотрудников пограничной службы.\n"),
        ("ES", "Estimados colegas:\n\nEl Ministerio del Interior solicita apoyo de la Secretaría para la formación\nde sus agentes en la detección de documentos falsos.\n"),
    ] {
        assert_kind(&read(from, None, text), Kind::AssistanceRequest);
    }
}

/// Words inserted inside a phrase.
#[test]
fn words_inside_a_phrase() {
    let c = read(
        "NL",
        None,
        "Dear colleagues,\n\nWe would be most grateful for any information on the procedures your customs\nservice applies to postal parcels from third countries.\n\nBest regards,\nJan de Vries\n",
    );
    assert_kind(&c, Kind::InformationRequest);
    assert_eq!(c.topics, [Topic::Customs]);
    let c = read(
        "BY",
        None,
        "Уважаемые коллеги!\n\nПросим, по мере возможности, сообщить, какие меры применяются на ваших пунктах\nпропуска для выявления поддельных паспортов.\n",
    );
    assert_kind(&c, Kind::InformationRequest);
}

/// A reply said in words, without a reference, and one whose reference is
/// further down than the first line.
#[test]
fn replies_in_words_and_references_below_the_first_line() {
    let c = read(
        "BE",
        None,
        "Madame, Monsieur,\n\nSuite à votre demande du 3 octobre, nous vous informons que nos services douaniers\nappliquent la procédure simplifiée aux envois postaux.\n\nCordialement,\n",
    );
    assert_kind(&c, Kind::InformationReply);
    assert_eq!(c.cited_reference, None);
    let c = read(
        "ES",
        None,
        "Estimados colegas:\n\nEn respuesta a su solicitud, les informamos de que el puesto fronterizo de\nAlgeciras aplica controles sistemáticos.\n",
    );
    assert_kind(&c, Kind::InformationReply);
    let c = read(
        "AT",
        None,
        "Sehr geehrte Kolleginnen und Kollegen,\n\nvielen Dank für Ihre Nachricht.\n\nBezugnehmend auf Ihre Anfrage BSM-2026-000314 teilen wir mit, dass die\nGrenzübertrittsstelle Nickelsdorf rund um die Uhr besetzt ist.\n",
    );
    assert_kind(&c, Kind::InformationReply);
    assert_eq!(c.cited_reference.as_deref(), Some("BSM-2026-000314"));
}

/// Batch 13's Russian, in other words than the rules had: answers "in
/// order" (no "your request" named), and a request to "support" a
/// project. Each read by its phrase.
#[test]
fn russian_replies_in_order_and_requests_to_support() {
    assert_read_by(
        "GE",
        "Арман, здравствуйте,\n\nотвечаем по порядку:\n\n1. Электронная виза проверяется на пункте пропуска автоматически.\n2. За 2025 год по электронным визам въехали 4 870 иностранцев.\n",
        Kind::InformationReply,
        "по порядку",
    );
    assert_read_by(
        "TJ",
        "Уважаемые коллеги!\n\nХотим открыть в аэропорту консультационную стойку для трудовых мигрантов. Просим поддержать такой пилотный проект: печать материалов и обучение консультантов.\n",
        Kind::AssistanceRequest,
        "поддержать",
    );
}

/// A reference cited only in the quoted header below a reply.
#[test]
fn a_reference_in_a_quoted_header() {
    let c = read(
        "IT",
        None,
        "Buongiorno,\n\nvi trasmettiamo i dati richiesti sui sequestri di cocaina nel porto di Gioia Tauro.\n\nCordiali saluti\nMarco Bianchi\n\n-----Messaggio originale-----\nDa: NFP Secretariat\nInviato: lunedì 5 ottobre 2026 10:12\nOggetto: [BSM-2026-000271] Sequestri\n\nChiediamo cortesemente informazioni sui sequestri.\n",
    );
    assert_kind(&c, Kind::InformationReply);
    assert_eq!(c.cited_reference.as_deref(), Some("BSM-2026-000271"));
    assert_eq!(c.topics, [Topic::AntiDrug]);
}

/// An acknowledgement of receipt names the request it received: its
/// reference is no evidence of a reply (the same reference in an answer is).
#[test]
fn an_acknowledgement_of_receipt_is_no_reply() {
    for (from, text) in [
        ("MT", "Dear colleagues,\n\nWe acknowledge receipt of your request BSM-2026-000512 and have passed it to the\nPolice. Our answer will follow.\n"),
        ("BE", "Madame, Monsieur,\n\nNous accusons bonne réception de votre demande BSM-2026-000512, transmise ce jour\naux services compétents.\n"),
        ("CH", "Sehr geehrte Damen und Herren\n\nWir bestätigen den Eingang Ihrer Anfrage BSM-2026-000512 und leiten sie an die\nzuständige Stelle weiter.\n"),
        ("SM", "Gentili colleghi,\n\nconfermiamo la ricezione della vostra richiesta BSM-2026-000512, inoltrata ai\nservizi competenti.\n"),
        ("TJ", "Уважаемые коллеги,\n\nПодтверждаем получение Вашего письма BSM-2026-000512. Письмо передано в\nпрофильное подразделение.\n"),
        ("AD", "Estimados colegas:\n\nAcusamos recibo de su solicitud BSM-2026-000512, que hemos trasladado al\nservicio competente.\n"),
    ] {
        assert_acknowledges(&read(from, None, text), "BSM-2026-000512");
    }
    // The same opening, then the answer: a reply.
    let c = read(
        "MT",
        None,
        "Dear colleagues,\n\nIn reply to your request BSM-2026-000512, we are pleased to inform you that the\nport of Valletta applies systematic checks to all ferries.\n",
    );
    assert_kind(&c, Kind::InformationReply);
}

/// When the model reads no kind at all, and barely, a lower lead of the
/// rules is clear (`clear-lead-none`, `overrule-none`): a phrase of one kind
/// in the opening lines decides. A model a little surer of "no kind" keeps
/// the message unclassified, and without the setting so would this one.
#[test]
fn a_clear_phrase_outweighs_a_model_barely_reading_no_kind() {
    // A model that knows no word: its reading is its bias, "no kind" at
    // p = e^x / (e^x + 4.718) for the bias x of `unclassified`.
    let model = |unclassified_bias: f32| {
        nfp_gateway::classify::model::Model::parse(&format!(
            "@classes\tassistance_request\tbest_practice\tcontact_update\tinformation_request\tinformation_reply\tunclassified\n\
             @threshold\t0.9\n\
             @bias\t-1\t0.3\t0\t0\t0\t{unclassified_bias}\n\
             zzqx\t1\t0\t0\t0\t0\t0\t0\n"
        ))
        .unwrap()
    };
    let barely = model(1.2285); // p 0.42
    let surer = model(1.4714); // p 0.48
    let m = message(
        "GB",
        None,
        "Dear colleagues,\n\nThe Home Office would like to request assistance with the courses of the new\nmaritime border unit in Dover.\n",
    );
    let c = corpus::classify_one_with(&m, rules(), &barely, directory());
    assert_kind(&c, Kind::AssistanceRequest);
    assert!(c.why.contains("a clear lead (>= 3.0)"), "{}", c.why);
    let c = corpus::classify_one_with(&m, rules(), &surer, directory());
    assert_kind(&c, Kind::Unclassified);
    let mut without = rules().clone();
    without.evidence.clear_lead_none = f32::INFINITY;
    let c = corpus::classify_one_with(&m, &without, &barely, directory());
    assert_kind(&c, Kind::Unclassified);
}

/// A message that only promises the answer for later names the request by
/// its reference: it answers nothing yet, so it is no reply (batch 15: "unsere
/// Antwort zu BSM-… kommt leider erst nächste Woche"). A partial answer that
/// promises the rest is still a reply.
#[test]
fn an_answer_promised_for_later_is_no_reply() {
    let subject = "RE: BSM-2026-000163 Questionnaire on drones at the green border";
    for (from, text) in [
        ("IE", "Dear Ms Brandstetter,\n\nJust a short note: our reply will follow early next week, as the Garda\nunit concerned is still compiling the figures.\n"),
        ("MC", "Madame,\n\nJe vous informe que notre réponse vous parviendra la semaine prochaine, la\nDirection de la Sûreté publique devant encore valider les données.\n"),
        ("LI", "Sehr geehrte Frau Brandstetter,\n\nleider verzögert sich unsere Rückmeldung; die Stellungnahme der Landespolizei\nwird nachgereicht.\n"),
        ("LU", "Bien reçu, merci. Nous vous ferons parvenir notre réponse d'ici la fin du mois, après\nconsultation de la Police grand-ducale.\n"),
        ("VA", "Gentile dottoressa,\n\nil nostro contributo è quasi pronto: lo trasmettiamo la settimana prossima,\ndopo la firma del direttore.\n"),
        ("BY", "Уважаемые коллеги,\n\nинформация по Вашему запросу будет представлена дополнительно, после\nсогласования с ГКПВ.\n"),
        ("ES", "Estimada Sra. Brandstetter:\n\nLe informamos de que la respuesta llegará la semana que viene; estamos a la\nespera de los datos de la Guardia Civil.\n"),
    ] {
        assert_acknowledges(&read(from, Some(subject), text), "BSM-2026-000163");
    }
    // The reference between the promise's words is one word of the gap.
    let c = read(
        "NO",
        Some("SV: BSM-2026-000163"),
        "Thanks, noted. The figures are still with the Police Directorate; our reply to\nBSM-2026-000163 will come before the end of the month.\n\nKari\n",
    );
    assert_acknowledges(&c, "BSM-2026-000163");
    let c = read(
        "IE",
        Some(subject),
        "Dear Ms Brandstetter,\n\nPlease find below our answers to questions 1 and 2; the answer to question 3\nwill follow next week.\n\n1. The Garda Síochána operates four drones along the border with Northern Ireland.\n2. They are used at night and on request of the local station.\n",
    );
    assert_kind(&c, Kind::InformationReply);
}

/// An acknowledgement whose subject echoes the request's reference and tags
/// is not a reply (it answers nothing yet) nor the request it echoes; an
/// automatic reply is nothing, whatever its subject echoes. A real reply with
/// the same subject still is one.
#[test]
fn acknowledgements_and_automatic_replies_echo_a_subject() {
    let subject = "Re: [BSM-2026-000512] [REQUEST] Training for document examiners";
    for (from, text) in [
        ("LV", "Dear colleagues,\n\nWe acknowledge receipt of your request. It has been passed to the State Border\nGuard; our answer will follow by 30 June.\n"),
        ("LU", "Madame, Monsieur,\n\nNous accusons réception de votre demande, transmise ce jour à la Police\ngrand-ducale. Nous reviendrons vers vous.\n"),
        ("AT", "Sehr geehrte Damen und Herren,\n\nwir bestätigen den Eingang Ihrer Anfrage und melden uns nach Rücksprache mit\ndem Bundesministerium für Inneres.\n"),
        ("SM", "Gentili colleghi,\n\nconfermiamo la ricezione della vostra richiesta; vi risponderemo appena\npossibile.\n"),
        ("KZ", "Уважаемые коллеги!\n\nПодтверждаем получение Вашего запроса. Ответ будет направлен дополнительно.\n"),
        // "Your letter has been received": no "confirm", no promise (batch 13).
        ("TM", "Уважаемые коллеги,\nВаше письмо получено и передано в соответствующее подразделение Государственной пограничной службы для рассмотрения.\n"),
        ("AD", "Estimados colegas:\n\nAcusamos recibo de su solicitud; la respuesta se remitirá en breve.\n"),
    ] {
        assert_acknowledges(&read(from, Some(subject), text), "BSM-2026-000512");
    }
    for (from, subject) in [
        (
            "GB",
            "Automatic reply: Re: [BSM-2026-000377] [REQUEST] Irregular migration figures",
        ),
        (
            "FR",
            "Réponse automatique : [DEMANDE D'INFORMATION] Passeurs",
        ),
        (
            "DE",
            "Automatische Antwort: AW: [BSM-2026-000377] Zollkontrollen",
        ),
        ("IT", "Risposta automatica: R: Richiesta di informazioni"),
        (
            "BY",
            "Автоматический ответ: Отв: [BSM-2026-000377] Статистика по незаконной миграции",
        ),
        (
            "ES",
            "Respuesta automática: Solicitud de información sobre precursores",
        ),
    ] {
        let c = read(from, Some(subject), "I am out of the office until 24 April with limited access to e-mail.\nFor urgent matters please contact my deputy.\n");
        assert_kind(&c, Kind::Unclassified);
        assert!(c.why.contains("automatic reply"), "{}", c.why);
        assert!(c.topics.is_empty(), "{:?}", c.topics);
    }
    let c = read(
        "LV",
        Some(subject),
        "Dear colleagues,\n\nThe State Border Guard runs a two-week course for document examiners each\nspring; the details are attached.\n",
    );
    assert_kind(&c, Kind::InformationReply);
}

/// Asking others to share their experience is a request, not an offer.
#[test]
fn asking_to_share_experience_is_not_a_best_practice() {
    let c = read(
        "MD",
        None,
        "Dear colleagues,\n\nThe NFP of Moldova requests the assistance of the Secretariat in setting up a\nrisk analysis unit at the border police. We would also ask other participating\nStates to share their experience with such units.\n",
    );
    assert_kind(&c, Kind::AssistanceRequest);
    let c = read(
        "SE",
        None,
        "Dear colleagues,\n\nWe would like to share our experience with automated border control gates at\nArlanda airport, which we believe may benefit other participating States.\n",
    );
    assert_kind(&c, Kind::BestPractice);
}

/// Material of the Secretariat's asked for, a workshop's report or a
/// seminar's presentations, is a request for information; the same
/// material given ("please find attached the report") is none.
#[test]
fn material_asked_for_is_a_request_for_information() {
    for (from, text) in [
        ("IE", "Hi Marta,\n\nCould you send us the presentations from the seminar on trafficking in human beings\nin February? Two of our participants never received them.\n\nThanks,\nSeán\n"),
        ("BE", "Bonjour,\n\nSerait-il possible de recevoir les présentations du séminaire de Vienne sur l'analyse\nde risque ? Nos participants n'ont pas pu les télécharger.\n\nMerci,\nKoen\n"),
        ("AT", "Liebe Kolleginnen und Kollegen,\n\ndürften wir Sie bitten, uns den Abschlussbericht des Workshops zur Risikoanalyse an der\ngrünen Grenze zu übermitteln? Er ist bei uns nie eingelangt.\n\nDanke, lg\nMarkus\n"),
        ("SI", "Cara Anna,\n\nti pregherei di mandarci il rapporto della riunione di esperti sulla frontiera verde e\nanche le presentazioni, se le avete.\n\nGrazie,\nTomaž\n"),
        ("AZ", "Не могли бы вы выслать итоговый отчет и презентации семинара по контролю\nпрекурсоров в Душанбе? Наши участники материалы так и не получили.\n\nР. Мамедов\n"),
        ("AD", "Hola Katharina,\n\nmi compañero me pregunta si nos podéis enviar las presentaciones del seminario de\nViena sobre análisis de riesgos. ¡Mil gracias!\n\nMarc\n"),
    ] {
        assert_read_by(from, text, Kind::InformationRequest, "asked for");
    }
    let c = read(
        "SE",
        None,
        "Dear colleagues,\n\nPlease find attached the report of the workshop on risk analysis we hosted in\nStockholm in March, with the presentations of the speakers.\n\nBest regards,\nAnna\n",
    );
    assert_ne!(c.kind, Kind::InformationRequest, "{}", c.why);
    assert!(!c.why.contains("asked for"), "{}", c.why);
    // The reference of the questionnaire whose answers are asked for names
    // that request: no evidence of a reply.
    let c = read(
        "CZ",
        None,
        "Guten Tag, könnten Sie uns bitte die Zusammenfassung der Antworten zum Fragebogen über\ngefälschte Visa (BSM-2026-000098) schicken?\n\nDanke, T. Hrubý\n",
    );
    assert_ne!(c.kind, Kind::InformationReply, "{}", c.why);
    assert!(
        c.why
            .contains("names the request whose material is asked for"),
        "{}",
        c.why
    );
}

/// A forward with a short cover note says what it forwards: the
/// forwarded text is read as the sender's (a reply's quote never is).
#[test]
fn a_forward_is_read_by_what_it_forwards() {
    let c = read(
        "TJ",
        Some("FW: письмо Главного управления - оснащение застав"),
        "Уважаемые коллеги,\n\nпо поручению начальника направляю Вам письмо ниже.\n\nС уважением,\nЗарина\n\n-----\nУважаемый господин руководитель Отдела,\n\nГлавное управление Пограничных войск обращается к Вам с просьбой о содействии в\nукреплении технического оснащения пограничных застав на таджикско-афганском участке\nгосударственной границы: просим рассмотреть возможность поставки тепловизоров.\n\nС уважением,\nначальник Главного управления\n",
    );
    assert_kind(&c, Kind::AssistanceRequest);
    let c = read(
        "MT",
        Some("I: minori non accompagnati"),
        "Vi inoltro il messaggio qui sotto. Saluti, J. Camilleri\n\n-----Original Message-----\nFrom: Immigration Police\nSent: Monday, 13 April 2026 14:22\nTo: NFP Malta\nSubject: minori non accompagnati\n\nGentili colleghi,\n\nvorremmo sapere come i vostri servizi di frontiera gestiscono negli aeroporti l'identificazione\ndei minori non accompagnati: quali verifiche fate e chi avvisate? Vi saremmo grati per ogni\ninformazione.\n\nCordiali saluti,\nPolicy and Planning\n",
    );
    assert_kind(&c, Kind::InformationRequest);
    for (from, subject, text, kind) in [
        ("IE", "FW: maritime surveillance course", "Forwarded on behalf of our Coast Guard, for your attention.\n\nRegards,\nSeán\n\n-----Original Message-----\nFrom: Coast Guard Operations\nSent: Tuesday, 3 March 2026 09:12\nTo: NFP Ireland\nSubject: maritime surveillance course\n\nDear colleagues,\n\nThe Irish Coast Guard requests the assistance of the OSCE Secretariat in organising a training\ncourse on maritime surveillance for twenty officers, with experts from participating States,\nin the autumn.\n\nKind regards,\nCoast Guard Operations\n", Kind::AssistanceRequest),
        ("BE", "TR: note de la douane", "Ci-dessous, la note de notre douane.\n\nCordialement,\nKoen\n\n---------- Message transféré ---------\nDe : Douane – Cellule internationale\nDate : lundi 2 mars 2026\nObjet : contrôle des colis postaux\n\nMadame, Monsieur,\n\nLa douane belge souhaite partager avec les autres États participants son expérience du\nciblage des colis postaux : les enseignements tirés de deux ans de pratique et les bons\nrésultats obtenus pourraient être utiles à d'autres administrations.\n\nCordialement,\nCellule internationale\n", Kind::BestPractice),
        ("AT", "WG: Umfrage Grenzkontrollen", "Zur Weiterleitung an alle NKS, siehe unten.\n\nLG\nAnna\n\n-----Ursprüngliche Nachricht-----\nVon: Grenzpolizei Wien\nGesendet: Montag, 2. März 2026 10:02\nAn: NKS Österreich\nBetreff: Umfrage Grenzkontrollen\n\nLiebe Kolleginnen und Kollegen,\n\nwir wären für Informationen dankbar, wie Ihre Grenzpolizeien die Kontrollen an den\nBinnengrenzen organisieren: Welche Dienststellen sind zuständig, und gibt es bei Ihnen\ngemeinsame Streifen?\n\nMit freundlichen Grüßen\nGrenzpolizei Wien\n", Kind::InformationRequest),
        ("ES", "RV: comunicación", "Os reenvío la comunicación de nuestra Dirección.\n\nUn saludo,\nLucía\n\n-----Mensaje original-----\nDe: Dirección General\nEnviado el: lunes, 2 de marzo de 2026 11:40\nPara: PFN España\nAsunto: nuevo jefe del Punto Focal\n\nEstimados colegas:\n\nA partir del 1 de abril, el nuevo jefe del Punto Focal Nacional de España es el Comisario\nD. Javier Ruiz Martín. Nuevo teléfono: +34 91 322 75 00; nueva dirección de correo:\npfn.jefe@interior.es.example. Les rogamos actualicen sus listas de contactos.\n\nAtentamente,\nDirección General\n", Kind::ContactUpdate),
    ] {
        assert_kind(&read(from, Some(subject), text), kind);
    }
    // The same request below a reply is the request answered, not this
    // message's kind.
    let c = read(
        "TJ",
        Some("RE: письмо Главного управления - оснащение застав"),
        "Уважаемые коллеги,\n\nблагодарим, письмо получили.\n\nС уважением,\nЗарина\n\n-----Original Message-----\nFrom: NFP\nSent: Monday\n\nГлавное управление Пограничных войск обращается к Вам с просьбой о содействии в\nукреплении технического оснащения пограничных застав: просим рассмотреть возможность\nпоставки тепловизоров.\n",
    );
    assert_ne!(c.kind, Kind::AssistanceRequest, "{}", c.why);
}

/// A negation cancels the phrase it stands before.
#[test]
fn a_negated_phrase_does_not_count() {
    let c = read(
        "FI",
        None,
        "Dear colleagues,\n\nThis is not a request for assistance. We simply want to thank the Secretariat\nfor the excellent organisation of the meeting in Vienna.\n",
    );
    assert_ne!(c.kind, Kind::AssistanceRequest, "{}", c.why);
}

/// An addressee line names the target; a State named in passing does not.
#[test]
fn targets_from_the_addressee_line_only() {
    let c = read(
        "LV",
        None,
        "Attn: NFP of Poland\n\nDear colleagues,\n\nWe would like to know how your border guard handles requests for\nasylum lodged at the border crossing points.\n",
    );
    assert_kind(&c, Kind::InformationRequest);
    assert_eq!(c.target.as_deref(), Some("PL"), "{}", c.why);
    let c = read(
        "KG",
        None,
        "Для НКП Польши (PL)\n\nУважаемые коллеги!\n\nПросим сообщить, какие документы требуются для транзита грузов через ваши\nпункты пропуска.\n",
    );
    assert_kind(&c, Kind::InformationRequest);
    assert_eq!(c.target.as_deref(), Some("PL"), "{}", c.why);
    // France only in passing: no target, the Secretariat triages.
    let c = read(
        "LV",
        None,
        "Dear colleagues,\n\nAs France did last year, we would like to know how other States handle\nrequests for asylum lodged at the border crossing points.\n",
    );
    assert_eq!(c.target, None, "{}", c.why);
    // Two States named: no target.
    let c = read(
        "LV",
        None,
        "To the NFPs of Poland and Lithuania\n\nWe would like to know how your border guards handle asylum requests.\n",
    );
    assert_eq!(c.target, None, "{}", c.why);
}

/// A salutation to a State's people names it when its name follows at
/// once ("Dear colleagues from Poland"), or ends the salutation after the
/// name of its service; a State in the same line's sentence does not, nor
/// do two States or two services.
#[test]
fn targets_from_a_salutation_to_colleagues() {
    for (from, text, state) in [
        ("BY", "Уважаемые коллеги из Республики Узбекистан!\n\nПросим сообщить, проходят ли граждане, выезжающие на работу, предвыездную подготовку.\n", "UZ"),
        ("LV", "Dear colleagues from Poland,\n\nwe would like to know how your border guards handle asylum requests at the border.\n", "PL"),
        ("SI", "Cari colleghi della Croazia,\n\nvi chiediamo cortesemente di indicarci quali controlli effettuate sui furgoni in uscita.\n", "HR"),
        ("MD", "Уважаемые коллеги из НКТ Украины,\n\nпросим вас сообщить среднее время пересечения для грузовых ТС.\n", "UA"),
        // The State's service between, the State's name ending the salutation.
        ("MD", "Добрый день уважаемые коллеги из Государственной пограничной службы Украины,\n\nпросим сообщить, сколько человек обычно в наряде при совместном патрулировании.\n", "UA"),
        ("IE", "Dear colleagues from the National Police Directorate of Norway,\n\nwe would like to know how long you keep the API data of air passengers.\n", "NO"),
    ] {
        let c = read(from, None, text);
        assert_kind(&c, Kind::InformationRequest);
        assert_eq!(c.target.as_deref(), Some(state), "{}", c.why);
    }
    for text in [
        "Dear colleagues, as in Poland last year, we would like to know how you handle asylum requests.\n",
        "Dear colleagues from Poland and Lithuania,\n\nwe would like to know how your border guards handle asylum requests.\n",
        "Уважаемые коллеги из ГПС и ГТК Азербайджана,\n\nхотели бы узнать, как у вас организована работа кинологов.\n",
        "Dear colleagues from the border police, as in Poland,\n\nwe would like to know how you handle asylum requests.\n",
    ] {
        let c = read("LV", None, text);
        assert_eq!(c.target, None, "{text}: {}", c.why);
    }
}

/// Official letters name a State by its official name, which the CLDR
/// lacks and ISO 3166-1 gives ("Эстонская Республика", "République
/// française"), declined and with the small letters the name itself has; a
/// name's first word is still capitalised, and no other word may be small
/// where the name writes it with a capital.
#[test]
fn targets_by_a_state_s_official_name() {
    for (from, text, state) in [
        ("LV", "Кому: НКТ Эстонской Республики (Департамент полиции и погранохраны)\n\nУважаемые коллеги,\n\nпросим сообщить, как у вас организована пограничная процедура по ходатайствам об убежище.\n", "EE"),
        ("BE", "À l'attention du PCN de la République française\n\nMadame, Monsieur,\n\nPourriez-vous nous indiquer combien de refus d'entrée vous avez prononcés en 2025 ?\n", "FR"),
        ("KZ", "Для НКЦ Российской Федерации\n\nУважаемые коллеги!\n\nПросим сообщить, сколько пунктов пропуска работает круглосуточно.\n", "RU"),
        ("AT", "An die Nationale Kontaktstelle der Kirgisischen Republik\n\nSehr geehrte Damen und Herren,\n\nwir bitten um Auskunft, wie viele Grenzübergänge im Winter geöffnet sind.\n", "KG"),
    ] {
        let c = read(from, None, text);
        assert_kind(&c, Kind::InformationRequest);
        assert_eq!(c.target.as_deref(), Some(state), "{}", c.why);
    }
    for text in [
        // The name's capitals written small: no name.
        "À l'attention du PCN de la république française\n\nPourriez-vous nous indiquer combien de refus d'entrée vous avez prononcés ?\n",
        "Кому: НКТ эстонской республики\n\nПросим сообщить, как у вас организована пограничная процедура.\n",
    ] {
        let c = read("LV", None, text);
        assert_eq!(c.target, None, "{text}: {}", c.why);
    }
}

/// An address block: the focal point on one line, the State on the next.
/// Not after a salutation, where the next line is the letter.
#[test]
fn targets_from_an_address_over_two_lines() {
    for (from, text, state) in [
        ("KZ", "Для НКП\nРеспублики Польша\n\nУважаемые коллеги!\n\nПросим сообщить, какие документы требуются для транзита грузов через ваши\nпункты пропуска.\n", "PL"),
        ("AT", "An die Nationale Kontaktstelle\nder Republik Polen\n\nSehr geehrte Damen und Herren,\n\nwir bitten um Auskunft, wie Ihre Grenzschutzbehörde Asylanträge an der Grenze\nbehandelt.\n", "PL"),
        ("LU", "À l'attention du point de contact national\nde la Belgique\n\nMadame, Monsieur,\n\nNous souhaiterions savoir comment vos services traitent les demandes d'asile\nprésentées aux frontières.\n", "BE"),
    ] {
        let c = read(from, None, text);
        assert_kind(&c, Kind::InformationRequest);
        assert_eq!(c.target.as_deref(), Some(state), "{}", c.why);
        assert!(c.why.contains("addressee line 2"), "{}", c.why);
    }
    let c = read(
        "LV",
        None,
        "Dear NFP colleagues,\nFrance asked us about this.\n\nWe would like to know how your border guards handle asylum requests.\n",
    );
    assert_eq!(c.target, None, "{}", c.why);
}

/// An addressee line that joins two States gives no target, even when the
/// rules know only one of the names ("Кыргызской Республики" is neither
/// the CLDR's nor ISO 3166-1's name); a conjunction before the name, inside
/// it, or in the subject's matter is no second addressee. "НКЦ" is the focal
/// point in Russian too.
#[test]
fn an_addressee_line_that_joins_two_states_gives_no_target() {
    for (from, subject, text) in [
        ("RU", None, "Уважаемые коллеги из НКЦ Республики Казахстан и Кыргызской Республики!\n\nПросим сообщить, собираются ли на ваших пунктах пропуска отпечатки пальцев.\n"),
        ("DK", None, "Attn: NFP of Norway and of the Swedish Police Authority\n\nDear colleagues,\n\nCould you tell us how long your border police keep the API data of air passengers, and who may consult it?\n"),
        ("IT", None, "Alla c.a. del PCN della Slovenia e della Polizia croata\n\nGentili colleghi,\n\nvi chiediamo di indicarci quanti respingimenti avete registrato nel 2025.\n"),
    ] {
        let c = read(from, subject, text);
        assert_kind(&c, Kind::InformationRequest);
        assert_eq!(c.target, None, "{}", c.why);
    }
    for (from, subject, text, state) in [
        ("TR", None, "Sehr geehrte Kolleginnen und Kollegen der Nationalen Kontaktstelle Deutschland,\n\nwir bitten um Auskunft, wie lange die Ausstellung von Passersatzpapieren dauert.\n", "DE"),
        ("HR", None, "Attn: NFP of Bosnia and Herzegovina\n\nDear colleagues,\n\nWe would be grateful for information on the opening hours of your crossing points with Croatia in the winter season.\n", "BA"),
        ("ES", Some("Pregunta para el PNC de Andorra – tabaco y controles de efectivo"), "Hola Jordi:\n\n¿Nos podrías indicar cuántos controles de efectivo hicisteis en 2025?\n", "AD"),
        ("KG", None, "Кому: НКЦ Республики Армения\n\nУважаемые коллеги,\n\nпросим сообщить, сколько грузовиков проходит через пункт пропуска в сутки.\n", "AM"),
    ] {
        let c = read(from, subject, text);
        assert_kind(&c, Kind::InformationRequest);
        assert_eq!(c.target.as_deref(), Some(state), "{}", c.why);
    }
}

/// "RE: [ЗАПРОС] …", "Odg: [RICHIESTA] …": the tag is the request's that
/// the message answers; when the words answer, it is a reply.
#[test]
fn a_request_tag_behind_a_reply_prefix_is_the_request_answered() {
    for (from, subject, text) in [
        ("KZ", "RE: [ЗАПРОС] Режим работы пункта пропуска «Кордай»", "Уважаемые коллеги!\n\nПо вашему запросу сообщаем, что пункт пропуска работает круглосуточно, грузовые полосы - с 8 до 20 часов.\n\nС уважением,\n"),
        ("ME", "Odg: [RICHIESTA] Precursori nel porto di Bar", "Gentili colleghi,\n\nin risposta alla vostra nota vi comunichiamo che nel 2025 la dogana ha fermato due spedizioni di precursori.\n"),
        ("IE", "Re: [REQUEST] Night-time staffing at land crossings", "Dear colleagues,\n\nIn reply to your request: our land crossings are staffed around the clock by two officers.\n"),
    ] {
        assert_kind(&read(from, Some(subject), text), Kind::InformationReply);
    }
    // Not a reply's subject: the tag still says "a request".
    let c = read(
        "KZ",
        Some("[ЗАПРОС] Режим работы пункта пропуска «Кордай»"),
        "Уважаемые коллеги!\n\nПросим сообщить режим работы пункта пропуска «Кордай».\n",
    );
    assert_kind(&c, Kind::InformationRequest);
}

/// A contact update's unit names are its address, not its matter.
#[test]
fn a_contact_update_takes_no_topics_from_its_words() {
    let c = read(
        "FR",
        None,
        "Madame, Monsieur,\n\nNous vous informons du changement de nos coordonnées : le nouveau point de contact\nadjoint est M. Paul Martin, du service des douanes de Lille.\nNouveau numéro de téléphone : +33 3 20 55 55 55.\n",
    );
    assert_kind(&c, Kind::ContactUpdate);
    assert_eq!(c.topics, []);
}

/// Tags keep winning over words.
#[test]
fn tags_win_over_words() {
    let c = read(
        "AT",
        Some("[BEST PRACTICE] Hundestaffel"),
        "Wir bitten um Unterstützung und Informationen.\n",
    );
    assert_kind(&c, Kind::BestPractice);
}

/// "[REQUEST]" and its like in other languages say "a request" and not
/// which: the words decide between assistance and information.
#[test]
fn a_request_tag_that_names_no_kind_leaves_it_to_the_words() {
    let c = read(
        "EE",
        Some("[ЗАПРОС] Никотиновые подушечки - ввоз и акциз"),
        "Уважаемые коллеги,\n\nпросим сообщить, облагается ли этот продукт акцизом в вашей стране и по какой ставке, \
         и какие ограничения на ввоз действуют.\n\nС уважением\n",
    );
    assert_kind(&c, Kind::InformationRequest);
    let c = read(
        "GE",
        Some("[REQUEST] Training for border guards"),
        "Dear colleagues,\n\nwe kindly request the Secretariat's assistance in organising a training course \
         for 20 border guards on document security, and would be grateful for expert support.\n",
    );
    assert_kind(&c, Kind::AssistanceRequest);
}

/// A reference in the subject makes a reply, unless the words ask again:
/// a reminder of an unanswered request is a request.
#[test]
fn a_reminder_citing_its_reference_is_a_request() {
    let c = read(
        "BY",
        Some("Напоминание: запрос BSM-2026-000288 от 19.03.2026"),
        "В НКЦ Литовской Республики\n\nУважаемые коллеги,\n\nнапоминаем, что ответ на наш запрос BSM-2026-000288 \
         до настоящего времени не поступил. Просим сообщить, каков порядок передачи задержанных транспортных средств.\n",
    );
    assert_kind(&c, Kind::InformationRequest);
    assert_eq!(c.cited_reference.as_deref(), Some("BSM-2026-000288"));
    let c = read(
        "AT",
        Some("AW: [BSM-2026-000042] Kühlcontainer"),
        "Sehr geehrte Frau Dubois,\n\nzu Ihrer Anfrage: 2025 wurden im Hafen Wien 412 Kühlcontainer kontrolliert.\n",
    );
    assert_kind(&c, Kind::InformationReply);
}

/// Mail that says what it is in no words stays unclassified.
#[test]
fn thanks_and_logistics_stay_unclassified() {
    for (from, text) in [
        ("GB", "Dear Anna,\n\nMany thanks for your hospitality in Vienna last week. See you in March!\n\nBest,\nTom\n"),
        ("DE", "Liebe Kolleginnen und Kollegen,\n\ndas Treffen findet im Raum 3.14 statt, Beginn 9:30 Uhr.\n\nViele Grüße\n"),
    ] {
        assert_kind(&read(from, None, text), Kind::Unclassified);
    }
}

/// The labelled corpus, held to the numbers measured when the rules were
/// tuned (bench/RESULTS.md): a change of rules or engine that loses kinds,
/// or that gives a single wrong target, fails here.
#[test]
fn the_corpus_keeps_its_numbers() {
    let messages = corpus::load();
    assert!(messages.len() >= 360, "{} messages", messages.len());
    let tuning: Vec<&corpus::Message> = messages.iter().filter(|m| !m.held_out).collect();
    let held_out: Vec<&corpus::Message> = messages.iter().filter(|m| m.held_out).collect();
    let t = corpus::score(&tuning, rules(), directory());
    let h = corpus::score(&held_out, rules(), directory());
    eprintln!("{}", corpus::report("Tuning split", &t));
    eprintln!("{}", corpus::report("Held-out split", &h));
    for (split, s, floor) in [
        ("tuning", &t, TUNING_FLOOR),
        ("held-out", &h, HELD_OUT_FLOOR),
    ] {
        let right = s.kind_right as f64 / s.messages as f64;
        assert!(
            right >= floor,
            "{split}: kind accuracy {right:.3} < {floor}"
        );
        assert_eq!(
            s.targets_right, s.targets_predicted,
            "{split}: a wrong target sends one State's mail to another"
        );
    }
    // The goal of issue 14: at least 95 % in every language, held out.
    for language in nfp_gateway::classify::Language::ALL {
        let right = h.accuracy(language);
        assert!(
            right >= HELD_OUT_LANGUAGE_FLOOR,
            "held-out, {}: kind accuracy {right:.3} < {HELD_OUT_LANGUAGE_FLOOR}",
            language.code()
        );
    }
}

/// Kind accuracy, all languages together, below which the corpus test fails
/// (held out: 0.972, 791/814, in session 16).
const TUNING_FLOOR: f64 = 0.995;
const HELD_OUT_FLOOR: f64 = 0.97;
/// Kind accuracy of each language on the held-out split: the goal of
/// issue 14. Russian stood below it in sessions 12-13 (0.939, 139/148) and
/// 15 (0.947, 178/188); with batches 19 and 20 (session 16: 19 more Russian
/// messages held out, all read right when they came) and the model retrained
/// on them, Russian reads 198/207 (0.957), the lowest of the six.
const HELD_OUT_LANGUAGE_FLOOR: f64 = 0.95;

/// rules/states.toml is what rules/make_states.py makes from the pinned
/// CLDR (Babel) and ISO 3166-1 (pycountry), not typed by hand.
#[test]
fn the_state_names_are_the_cldr_s_and_iso_s() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let out = std::process::Command::new("python3")
        .arg(root.join("rules/make_states.py"))
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "rules/make_states.py failed (scripts/install-deps.sh installs Babel and pycountry): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let committed = std::fs::read(root.join("rules/states.toml")).unwrap();
    assert!(
        out.stdout == committed,
        "rules/states.toml differs from rules/make_states.py's output"
    );
}

/// The shipped model (rules/model.tsv) is the one this code trains from the
/// corpus' tuning split: retrained here, it must give the same file, so
/// that it cannot drift from the corpus or from the code that reads text
/// into features. `NFP_GATEWAY_TRAIN=1 cargo test --test classify
/// the_model` writes it (and prints its cross-validation).
#[test]
fn the_model_is_the_one_trained_from_the_tuning_split() {
    use nfp_gateway::classify::{self, model};
    let messages = corpus::load();
    let examples: Vec<model::Example> = messages
        .iter()
        .filter(|m| !m.held_out)
        .map(|m| {
            let f = classify::model_features(m.subject.as_deref(), &m.text, rules(), m.language);
            (f, m.kind)
        })
        .collect();
    let training = model::Training::default();
    let (mut trained, v) = model::train(&examples, &training);
    trained.provenance = vec![
        "nfp-gateway's classification model: multinomial logistic regression over the folded stems".into(),
        "of a message's new text and pairs of stems in a sentence (gateway/src/classify/model.rs).".into(),
        format!(
            "Trained from the {} messages of the tuning split of bench/classify/corpus (the held-out split never),",
            examples.len()
        ),
        format!(
            "C {}, {} features (each in at least {} messages). Cross-validation, {} folds: the model's kind right",
            training.c,
            trained.len(),
            training.min_documents,
            training.folds
        ),
        format!(
            "for {:.1} %; from the threshold, {:.1} % right and {:.1} % wrong kinds, the rest unclassified.",
            100.0 * v.accuracy,
            100.0 * v.accuracy_at_threshold,
            100.0 * v.wrong_at_threshold
        ),
        "Do not edit: retrain with NFP_GATEWAY_TRAIN=1 cargo test --test classify the_model".into(),
    ];
    let rendered = trained.render();
    let path = corpus::root().join("../../../rules/model.tsv");
    if std::env::var_os("NFP_GATEWAY_TRAIN").is_some() {
        std::fs::write(&path, &rendered).unwrap();
        eprintln!("{}", trained.provenance.join("\n"));
    }
    let shipped = std::fs::read_to_string(&path).unwrap();
    let first_difference = shipped
        .lines()
        .zip(rendered.lines())
        .position(|(a, b)| a != b);
    assert!(
        shipped == rendered,
        "rules/model.tsv is not what the tuning split trains (first different line: {first_difference:?}, {} lines against {})",
        shipped.lines().count(),
        rendered.lines().count()
    );
}

/// What the words of chasing could misread: a colleague chasing the
/// registrations for a workshop asks for names, not information, and
/// stays unclassified.
#[test]
fn chasing_registrations_for_a_workshop_is_no_request_for_information() {
    for (from, text) in [
        ("AT", "Dear colleagues,\n\nJust chasing up the registrations for the workshop on document fraud in Ohrid on 12-14 May:\nthe deadline is this Friday. Please send the names of your participants to\nworkshop@osce.example.\n\nBest regards,\nAnna\n"),
        ("FR", "Bonjour à tous,\n\nJe reviens vers vous concernant ma demande de noms pour l'atelier de Skopje : les inscriptions\nclosent vendredi. Merci de renvoyer le formulaire rempli.\n\nCordialement,\nMarie\n"),
        ("RU", "Коллеги,\n\nвозвращаюсь к моему письму о семинаре в Алматы: регистрация участников заканчивается в пятницу.\nПросьба направить заполненные анкеты участников.\n\nС уважением,\nИрина\n"),
    ] {
        assert_kind(&read(from, None, text), Kind::Unclassified);
    }
}
