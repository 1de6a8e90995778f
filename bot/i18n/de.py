"""Deutsch: what a requester reads, and the slash commands they use, in German.

The informal "du" throughout, as Discord communities write. The same message ids and the same
``{placeholders}`` as :mod:`bot.i18n.en`; a command mentioned in a sentence is named by its German
name (``/prüfen``), which is what a German Discord client shows.
"""

from __future__ import annotations

from collections.abc import Mapping

MESSAGES: Mapping[str, str | Mapping[str, str]] = {
    # -- was mit dem Bild geschieht ----------------------------------------------------------------
    "picture.handled": (
        "Aus deinem Bild wurde ein Fingerabdruck (ein Hash) berechnet, danach wurde es verworfen: "
        "Es wurde nicht gespeichert."
    ),
    "picture.deleted": "Ich habe deine Nachricht gelöscht, damit niemand sonst das Bild sieht.",
    "picture.not_deleted": (
        "Ich konnte deine Nachricht nicht löschen: Bitte lösch sie selbst, andere können sie sehen."
    ),
    "send_picture_here": (
        "Schick mir das Bild hier, in dieser privaten Unterhaltung, und ich prüfe es. Daraus wird ein "
        "Fingerabdruck (ein Hash) berechnet, danach wird es verworfen: Es wird nicht gespeichert."
    ),
    "cannot_dm": (
        "Ich kann dir keine private Nachricht schicken. Nutze `/prüfen` mit dem Bild als Anhang: Nur du "
        "siehst die Antwort."
    ),
    "dm_sent": "Ich habe dir eine private Nachricht geschickt.",
    "send_a_picture": "Schick mir ein Bild (als Anhang), damit ich es prüfe.",
    "download_failed": "Ich konnte die Datei nicht von Discord herunterladen. Bitte versuch es noch einmal.",
    "not_your_button": "Dieser Button ist nicht für dich.",
    "something_went_wrong": (
        "Bei mir ist etwas schiefgelaufen; es wurde nichts gespeichert. Bitte versuch es später noch einmal."
    ),
    # -- Antworten auf eine Prüfung ------------------------------------------------------------------
    "dataset": {"one": "dem einen Bild im Datensatz", "other": "allen {count:,} Bildern im Datensatz"},
    "no_match.removed": {
        "one": (
            "{handled}\n\nIch habe es mit {dataset} verglichen und 1 Kopie davon gefunden, aber sie "
            "wurde schon entfernt: Jemand aus dem Team hat eine frühere Anfrage genehmigt, deshalb steht "
            "sie auf der Entfernungsliste des Datensatzes und es gibt nichts mehr zu beantragen."
        ),
        "other": (
            "{handled}\n\nIch habe es mit {dataset} verglichen und {count:,} Kopien davon gefunden, aber "
            "sie wurden schon entfernt: Jemand aus dem Team hat eine frühere Anfrage genehmigt, deshalb "
            "stehen sie auf der Entfernungsliste des Datensatzes und es gibt nichts mehr zu beantragen."
        ),
    },
    "no_match.unjudged": {
        "one": (
            "{handled}\n\nIch habe es mit {dataset} verglichen. 1 Bild darin sieht deinem ähnlich, ist "
            "aber zu schlicht (fast einfarbig oder ein weicher Farbverlauf), als dass ich sagen könnte, "
            "ob es eine Kopie ist; ich kann es also weder bestätigen noch ausschließen. Jemand aus dem "
            "Team kann sich das ansehen; {reach}"
        ),
        "other": (
            "{handled}\n\nIch habe es mit {dataset} verglichen. {count:,} Bilder darin sehen deinem "
            "ähnlich, sind aber zu schlicht (fast einfarbig oder ein weicher Farbverlauf), als dass ich "
            "sagen könnte, ob sie Kopien sind; ich kann es also weder bestätigen noch ausschließen. "
            "Jemand aus dem Team kann sich das ansehen; {reach}"
        ),
    },
    "no_match": (
        "{handled}\n\nIch habe es mit {dataset} verglichen und keine Kopie davon gefunden. Stark "
        "zugeschnittene oder bearbeitete Kopien können mir entgehen: Wenn du weißt, dass das Bild im "
        "Datensatz ist, kann sich trotzdem jemand aus dem Team darum kümmern; {reach}"
    ),
    "write_to_them": "schreib dem Team.",
    "matches_found": {
        "one": (
            "{handled}\n\nIch habe 1 Kopie davon im Datensatz gefunden (unten aufgeführt). Wenn du sie "
            "entfernen lassen willst, drück auf **Entfernung beantragen**. Du musst nicht sagen, wer du bist."
        ),
        "other": (
            "{handled}\n\nIch habe {count:,} Kopien davon im Datensatz gefunden (unten aufgeführt). Wenn "
            "du sie entfernen lassen willst, drück auf **Entfernung beantragen**. Du musst nicht sagen, "
            "wer du bist."
        ),
    },
    "found_entry": "{closeness}\nURL: {url}\nBildunterschrift: {caption}",
    "found_more": "und {count} weitere; eine Anfrage umfasst alle",
    "closeness.same": "dasselbe Bild",
    "closeness.very_close": "eine sehr ähnliche Kopie",
    "closeness.close": "eine ähnliche Kopie (bearbeitet oder zugeschnitten)",
    "which_picture": "**Dein {ordinal} Bild (von {count}):**",
    # -- Bilder, die sich nicht prüfen lassen --------------------------------------------------------
    "refused_picture": "Ich konnte diese Datei nicht prüfen. {reason}\nEs wurde nichts gespeichert.",
    "too_big": (
        "Diese Datei ist {size:.1f} MiB groß; ich kann Dateien bis {limit:.0f} MiB prüfen. Eine kleinere "
        "Kopie oder ein Screenshot des Bildes geht genauso gut. Es wurde nichts gespeichert."
    ),
    "not_a_picture": (
        "Diese Datei ist kein Bild, das ich prüfen kann: Bitte schick ein JPEG, PNG, WebP, GIF oder BMP."
    ),
    "not_a_picture.typed": (
        "Diese Datei ({content_type}) ist kein Bild, das ich prüfen kann: Bitte schick ein JPEG, PNG, "
        "WebP, GIF oder BMP."
    ),
    "decoding.empty": "Die Datei ist leer (0 Bytes). Bitte schick das Bild selbst.",
    "decoding.too_many_bytes": (
        "Die Datei hat {size:,} Bytes; geprüft werden können Bilder bis {limit:,} Bytes "
        "({limit_mib:.1f} MiB). Eine kleinere Kopie geht genauso gut."
    ),
    "decoding.not_an_image": (
        "Diese Datei ist kein Bild, das ich lesen kann. Unterstützt werden JPEG, PNG, WebP, GIF und BMP."
    ),
    "decoding.too_small": (
        "Das Bild hat nur {width}x{height} Pixel; für einen verlässlichen Vergleich braucht es "
        "mindestens {min_side} Pixel pro Seite."
    ),
    "decoding.too_thin": (
        "Das Bild hat {width}x{height} Pixel und ist zu lang und schmal für einen Vergleich. Eine Kopie "
        "in den üblichen Proportionen des Bildes geht."
    ),
    "decoding.corrupt": (
        "Dieses Bild scheint beschädigt oder unvollständig zu sein und lässt sich nicht lesen. Bitte "
        "versuch es mit einer anderen Kopie."
    ),
    "decoding.too_many_pixels": (
        "Das Bild hat mehr als {limit:,} Pixel, mehr als sich sicher prüfen lässt. Eine kleinere Kopie "
        "(zum Beispiel ein Screenshot) geht genauso gut."
    ),
    "checking.too_plain": (
        "Dieses Bild ist zu schlicht (fast einfarbig oder ein weicher Farbverlauf), um es verlässlich zu "
        "vergleichen. Wenn es das Bild ist, das du meinst, kann sich trotzdem jemand aus dem Team deine "
        "Anfrage ansehen."
    ),
    # -- viel los, langsamer --------------------------------------------------------------------------
    "seconds": {"one": "{count:,} Sekunde", "other": "{count:,} Sekunden"},
    "minutes": {"one": "{count:,} Minute", "other": "{count:,} Minuten"},
    "busy": (
        "Gerade prüfen viele Leute Bilder und ich konnte deins nicht annehmen; es wurde nicht gespeichert. "
        "Bitte versuch es in {duration} noch einmal."
    ),
    "slow_down": (
        "Du hast in kurzer Zeit mehrere Bilder prüfen lassen. Bitte versuch es in {duration} noch einmal."
    ),
    "requests_slow_down": (
        "Du hast in kurzer Zeit mehrere Anfragen gestellt. Bitte versuch es in {duration} noch einmal."
    ),
    "pictures_not_checked": {
        "one": (
            "Dein {places} Bild (von {total}) habe ich nicht geprüft: Du hast in kurzer Zeit mehrere "
            "Bilder prüfen lassen. Bitte schick es in {duration} noch einmal."
        ),
        "other": (
            "Deine {places} Bilder (von {total}) habe ich nicht geprüft: Du hast in kurzer Zeit mehrere "
            "Bilder prüfen lassen. Bitte schick sie in {duration} noch einmal."
        ),
    },
    "list.and": "und",
    "hashing_worker_died": (
        "Beim Prüfen dieses Bildes ist etwas schiefgelaufen, und es wurde nicht gespeichert. Bitte schick "
        "es noch einmal; wenn dasselbe Bild zweimal scheitert, ist es vielleicht eine Datei, die ich "
        "nicht lesen kann."
    ),
    "index_incomplete": (
        "Ich konnte gerade nicht den ganzen Index des Datensatzes durchsuchen und kann dir deshalb nicht "
        "sagen, ob er eine Kopie deines Bildes enthält. Es wurde nichts gespeichert. Bitte versuch es "
        "später noch einmal."
    ),
    "store_busy": (
        "Die Ticket-Datenbank ist gerade ausgelastet, es wurde nichts gespeichert. Bitte versuch es gleich "
        "noch einmal."
    ),
    "store_full": (
        "Ich konnte deine Anfrage nicht speichern: In der Ticket-Datenbank ist kein Platz mehr, es wurde "
        "nichts gespeichert. Bitte versuch es später noch einmal."
    ),
    # -- Anfragen ------------------------------------------------------------------------------------
    "check_expired": (
        "Dieses Ergebnis ist abgelaufen (Ergebnisse werden nur kurz aufbewahrt, und nur als "
        "Fingerabdrücke). Bitte lass das Bild noch einmal prüfen, um eine Anfrage zu stellen."
    ),
    "request_form_expired": (
        "Ich konnte diese Anfrage nicht einreichen: Ich wurde neu gestartet, während du geschrieben hast, "
        "und das Ergebnis, zu dem sie gehört, ist weg (Ergebnisse werden nur kurz aufbewahrt, und nur als "
        "Fingerabdrücke). Es wurde nichts gespeichert. Bitte lass das Bild noch einmal prüfen, um eine "
        "Anfrage zu stellen."
    ),
    "request_form_expired.note": "Was du geschrieben hast, zum erneuten Einfügen:",
    "already_requested": (
        "Darum hast du schon gebeten: Deine Anfrage ist **{id}**. Auf dem Server zeigt dir "
        "`/meine-anfragen`, wie es darum steht."
    ),
    "commands_hint": (
        "Auf dem Server zeigt `/meine-anfragen` deine Anfragen, und mit `/zurückziehen` nimmst du eine "
        "zurück."
    ),
    "ticket_created.linked": (
        "Deine Anfrage ist **{id}**. Jemand hat schon darum gebeten, dasselbe Bild zu entfernen, deshalb "
        "wird deine Anfrage mit dieser zusammengeführt; ich schicke dir eine private Nachricht, sobald "
        "das Team entschieden hat. {hint}"
    ),
    "ticket_created.approved": (
        "Deine Anfrage ist **{id}**. Dieses Bild wurde schon aus der Liste des Datensatzes entfernt."
    ),
    "ticket_created": (
        "Deine Anfrage ist **{id}**. Jemand aus dem Team prüft sie; das Team sieht nur die Einträge des "
        "Datensatzes, nie dein Bild. Ich schicke dir eine private Nachricht, sobald entschieden ist. {hint}"
    ),
    "too_many_requests": (
        "Du hast schon {count} Anfragen, die auf eine Entscheidung warten (eine Person kann höchstens "
        "{limit} gleichzeitig haben). Du kannst eine weitere stellen, sobald über eine davon entschieden ist."
    ),
    "repeated_request": (
        "Du hast schon darum gebeten, diese Einträge zu entfernen: Die Anfrage {id} ist {state}."
    ),
    "note_too_long": "Die Notiz ist {length} Zeichen lang; höchstens {limit} passen hinein.",
    "decision.approved": (
        "Gute Nachricht zu deiner Anfrage **{id}**: Das Team hat sie genehmigt. Die passenden Einträge "
        "stehen auf der Entfernungsliste des Datensatzes, und der Fingerabdruck des Bildes ist für "
        "künftige Sammlungen gesperrt.\nNotiz vom Team: {reason}"
    ),
    "decision.rejected": (
        "Zu deiner Anfrage **{id}**: Das Team hat entschieden, diese Einträge nicht zu entfernen.\n"
        "Begründung: {reason}"
    ),
    "decision.other": "Deine Anfrage **{id}** ist jetzt {state}.",
    "decision.contact": (
        "Wenn du das für falsch hältst, kann sich das Team die Sache noch einmal ansehen: {contact}"
    ),
    "state.open": "offen",
    "state.claimed": "in Bearbeitung",
    "state.approved": "genehmigt",
    "state.rejected": "abgelehnt",
    "state.withdrawn": "zurückgezogen",
    "state.linked": "verknüpft",
    "entries": {"one": "{count:,} Eintrag", "other": "{count:,} Einträge"},
    "ticket_line.claimed_by": "in Bearbeitung bei {who}",
    "ticket_line.flagged": "markiert",
    "no_requests": "Du hast keine Entfernungsanfragen.",
    "withdrawn": "Die Anfrage {id} ist zurückgezogen.",
    "not_yours": "Die Anfrage {id} ist nicht von dir, deshalb kannst du sie nicht zurückziehen.",
    "no_such_ticket": "Es gibt keine Anfrage {id}.",
    "cannot_withdraw": "Die Anfrage {id} lässt sich nicht zurückziehen: Sie ist schon {state}.",
    # -- /vergiss-mich -------------------------------------------------------------------------------
    "forget_confirm": (
        "Damit werden deine Discord-ID, deine Notizen und die Fingerabdrücke deiner Bilder aus all deinen "
        "Anfragen gelöscht. Über offene Anfragen wird trotzdem entschieden, aber niemand (nicht einmal "
        "du) kann sie danach noch verfolgen. Fortfahren?"
    ),
    "forgotten.none": "Erledigt. Ich hatte keine Anfrage von dir, also gab es nichts zu löschen.",
    "forgotten": {
        "one": "Erledigt. Deine Daten wurden aus {count:,} Anfrage gelöscht.",
        "other": "Erledigt. Deine Daten wurden aus {count:,} Anfragen gelöscht.",
    },
    "nothing_erased": "Es wurde nichts gelöscht.",
    "forget_expired": (
        "Diese Frage ist abgelaufen, und es wurde nichts gelöscht. Nutze `/vergiss-mich` noch einmal (auf "
        "dem Server), um deine Daten zu löschen."
    ),
    # -- im Privatsphäre-Kanal -----------------------------------------------------------------------
    "dm_failed_notice": (
        "{mention} Ich habe deine Nachricht gelöscht, damit niemand sonst sie sieht, aber Discord konnte "
        "dir meine Antwort gerade nicht zustellen. Nutze hier `/prüfen` (nur du siehst die Antwort) oder "
        "poste das Bild in ein paar Minuten noch einmal."
    ),
    "dm_closed_notice": (
        "{mention} Ich habe deine Nachricht gelöscht, damit niemand sonst sie sieht, aber ich kann dir "
        "meine Antwort nicht als private Nachricht schicken. Nutze hier `/prüfen` (nur du siehst die "
        "Antwort) oder erlaube Direktnachrichten von diesem Server."
    ),
    "panel": (
        "**Lass ein Bild von dir aus diesem Datensatz entfernen**\n"
        "Poste hier ein Bild: Ich lösche es sofort, vergleiche es mit dem Datensatz und antworte dir "
        "privat. Bis ich es gelöscht habe, könnten andere in diesem Kanal es sehen. Ganz private Wege:\n"
        "• `/prüfen` mit dem Bild als Anhang: Nur du siehst es und die Antwort;\n"
        "• schick mir das Bild als Direktnachricht.\n"
        "Bilder werden nie gespeichert: Nur ein Fingerabdruck wird genutzt, um Kopien zu finden."
    ),
    # -- Beschriftungen von Buttons und Formularen (höchstens 45 Zeichen) -------------------------
    "label.request_removal": "Entfernung beantragen",
    "label.check_privately": "Privat prüfen",
    "label.erase_my_data": "Meine Daten löschen",
    "label.cancel": "Abbrechen",
    "label.note": "Sollte das Team noch etwas wissen?",
    "note_warning": (
        "Optional. Bitte schreib keine Namen, Kontaktdaten oder sonst etwas, das dich erkennbar macht."
    ),
    # -- Slash-Befehle: Namen (klein, 1-32 Zeichen), Beschreibungen (1-100 Zeichen) ---------------
    "command.check": "prüfen",
    "command.check.description": "Prüfe privat, ob ein Bild im Datensatz ist",
    "command.check.image": "bild",
    "command.check.image.description": "Das Bild, das geprüft werden soll (nur du siehst es und die Antwort)",
    "command.mytickets": "meine-anfragen",
    "command.mytickets.description": "Deine Entfernungsanfragen und wie es um sie steht",
    "command.withdraw": "zurückziehen",
    "command.withdraw.description": "Zieh eine deiner Entfernungsanfragen zurück",
    "command.withdraw.ticket": "anfrage",
    "command.withdraw.ticket.description": "Die Nummer der Anfrage, z. B. K7M2QX",
    "command.forget-me": "vergiss-mich",
    "command.forget-me.description": "Lösch deine Discord-ID und deine Daten aus all deinen Anfragen",
}
