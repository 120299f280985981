"""Texts of the OAuth callback page, by outcome code: Japanese first, English below.

The page is where the issuer sends the person's browser back after consent (R11,
R12), so each refusal says what happened and what to do next, citing the rule.
"""

from __future__ import annotations

from typing import TypedDict


class Text(TypedDict):
    ja: str
    en: str


PAGE: dict[str, Text] = {
    "title": {"ja": "カード連携 — renkei", "en": "Card link — renkei"},
    "heading_linked": {"ja": "連携が完了しました", "en": "The card is linked"},
    "heading_refused": {"ja": "連携できませんでした", "en": "The card could not be linked"},
    "rule": {"ja": "該当するルール", "en": "Rule"},
    "back": {"ja": "チャットに戻る", "en": "Back to the chat"},
    "close": {
        "ja": "このページは閉じてかまいません。",
        "en": "You may close this page.",
    },
    "stop_leftover": {
        "ja": (
            "今回の許可はアメリカン・エキスプレス側にまだ残っていて、このカードを押さえています。"
            "会員サイトで「登録情報の変更」→「外部サービスとの連携」→「renkei」→「停止する」を"
            "行ってから、正しいカードでもう一度お試しください。"
        ),
        "en": (
            "The permission you just gave is still registered at American Express and holds "
            "the card. On the member site go to 登録情報の変更 → 外部サービスとの連携 → renkei → "
            "停止する, then try again with the right card."
        ),
    },
}

ISSUER_NAMES: dict[str, Text] = {
    "amex": {"ja": "アメリカン・エキスプレス", "en": "American Express"},
    "jcb": {"ja": "JCB（MyJCB）", "en": "JCB (MyJCB)"},
}

# renkei's start page: the link of the member's conversation opens it.
START_PAGE: dict[str, Text] = {
    "title": {"ja": "カード連携の確認 — renkei", "en": "Confirm the card link — renkei"},
    "heading": {"ja": "カード連携の確認", "en": "Confirm the card link"},
    "heading_refused": {"ja": "このリンクは使えません", "en": "This link cannot be used"},
    "intro": {
        "ja": "{requested_by} さんが、{issuer} のカードを renkei に連携する手続きを始めました。",
        "en": "{requested_by} started linking a {issuer} card to renkei.",
    },
    "ask_code": {
        "ja": (
            "ご本人の確認のため、ご自分の会話（Slack、ターミナル、チャット）に表示された"
            "確認コードを入力してください。コードは1回だけ、短い時間だけ使えます。"
        ),
        "en": (
            "To confirm it is you, type the confirmation code shown in your own "
            "conversation (Slack, the terminal or the chat). The code works once, for a short "
            "time only."
        ),
    },
    "warning": {
        "ja": (
            "この手続きを始めたのがご自分でなければ、コードを入力せずにこのページを閉じて"
            "ください。ほかの人から送られたリンクやコードでカードを連携すると、あなたの"
            "カードの明細がその人の事業所に入ります。"
        ),
        "en": (
            "If you did not start this yourself, do not type any code: close this page. "
            "Linking your card through a link or code someone sent you would put your card's "
            "statements into their office."
        ),
    },
    "code": {"ja": "確認コード", "en": "Confirmation code"},
    "attempts_left": {"ja": "残りの入力回数: {n}", "en": "Tries left: {n}"},
    "submit": {"ja": "確認してカード会社へ進む", "en": "Confirm and go on to the card issuer"},
    "close": {"ja": "このページは閉じてかまいません。", "en": "You may close this page."},
}

OUTCOMES: dict[str, Text] = {
    # Success, by purpose of the authorization.
    "linked_register": {
        "ja": "API連携の口座を登録しました。明細の同期を始めます。",
        "en": "The API-linked account is registered. Statement sync starts now.",
    },
    "linked_switch": {
        "ja": (
            "API方式へ切り替えました。これまでの明細はそのまま残ります。"
            "保存していたIDとパスワードは削除しました。"
        ),
        "en": (
            "The account now syncs by API. Its statements so far stay as they are; "
            "the stored ID and password were erased."
        ),
    },
    "linked_reauth": {
        "ja": "再認証が完了しました。同期を再開します。",
        "en": "Re-authentication is complete. Sync resumes.",
    },
    # Refusals of the domain's rules.
    "revoke_at_issuer_first": {
        "ja": (
            "このカードはアメリカン・エキスプレス側で連携が停止されていません。"
            "会員サイトにログインし、「登録情報の変更」→「外部サービスとの連携」→"
            "「renkei」→「停止する」の順に操作してから、もう一度お試しください。"
        ),
        "en": (
            "The link of this card has not been stopped at American Express. Log in to the "
            "member site, go to 登録情報の変更 (change registration) → 外部サービスとの連携 "
            "(external service links) → renkei → 停止する (stop), then try again."
        ),
    },
    "combined_login_not_supported": {
        "ja": (
            "おまとめログインでは連携できません。この口座で同期するカードの"
            "MyJCB IDでログインし直して、もう一度認証してください。"
        ),
        "en": (
            "Combined login cannot be used. Log in with the MyJCB ID of the card this "
            "account syncs (not the combined login) and authenticate again."
        ),
    },
    "wrong_myjcb_id": {
        "ja": (
            "この口座のカードとは別のMyJCB IDで認証されました。"
            "この口座のカードのMyJCB IDで認証し直してください。"
        ),
        "en": (
            "You authenticated with a MyJCB ID other than this account's card's. "
            "Authenticate again with the MyJCB ID of this account's card."
        ),
    },
    "myjcb_id_already_linked": {
        "ja": ("このMyJCB IDはすでに別の口座と連携しています。MyJCB ID 1つにつき口座は1つです。"),
        "en": "This MyJCB ID is already linked to another account: one account per MyJCB ID.",
    },
    "card_already_linked": {
        "ja": (
            "このカードはすでに別の口座でAPI連携されています。1枚のカードをAPI連携できるのは"
            "1つの口座だけです。複数の事業所で使っている場合は、連携を残す事業所に切り替えてから"
            "操作してください。"
        ),
        "en": (
            "This card is already API-linked to another account; one card can be linked to one "
            "account only. If several offices use it, change to the office that will keep the "
            "link and switch there."
        ),
    },
    "one_card_per_authorization": {
        "ja": (
            "アメリカン・エキスプレスの連携はカード1枚ずつ行います。"
            "許可画面でこの口座のカードだけを選んで、もう一度お試しください。"
        ),
        "en": (
            "American Express cards are linked one at a time. On the consent screen tick only "
            "this account's card, then try again."
        ),
    },
    "supplementary_not_registered": {
        "ja": (
            "追加カードがオンライン・サービスのIDに登録されていないため、許可画面に表示されません。"
            "先にアメリカン・エキスプレス側で追加カードをIDに登録してから、もう一度お試しください。"
        ),
        "en": (
            "The supplementary card is not registered to the online-service ID, so the consent "
            "screen does not list it. Register it to that ID at American Express first, then "
            "try again."
        ),
    },
    "card_mismatch": {
        "ja": (
            "許可されたカードがこの口座のカードと一致しません。基本カードと追加カードは"
            "それぞれ別の口座で連携してください。"
        ),
        "en": (
            "The card you allowed is not this account's card. Basic and supplementary cards "
            "are linked each in its own account."
        ),
    },
    "account_exists_for_card": {
        "ja": (
            "この事業所には、このカードの口座がすでにあります。新しい口座は作らず、"
            "既存の口座の[口座設定]から[API方式への切替]を行ってください。"
        ),
        "en": (
            "This office already has an account for this card. Do not create another one: "
            "switch the existing account to API from its settings."
        ),
    },
    "card_not_eligible": {
        "ja": "このカードはAPI連携の対象外です。",
        "en": "This card cannot be API-linked.",
    },
    "invalid_state": {
        "ja": "この口座は現在連携できない状態です。口座の設定をご確認ください。",
        "en": "This account cannot be linked in its current state. Check its settings.",
    },
    # What the issuer or the browser sent back.
    "access_denied": {
        "ja": (
            "カード会社の画面で許可されませんでした。連携する場合は、"
            "もう一度手続きを行い「同意して次へ」「許可する」を押してください。"
        ),
        "en": (
            "Access was not allowed on the issuer's screen. To link, start again and press "
            "同意して次へ (agree and continue) and 許可する (allow)."
        ),
    },
    "consent_refused": {
        "ja": "カード会社が連携を受け付けませんでした。時間をおいてもう一度お試しください。",
        "en": "The issuer refused the link. Please try again later.",
    },
    "issuer_unavailable": {
        "ja": "カード会社に接続できませんでした。時間をおいてもう一度お試しください。",
        "en": "The issuer could not be reached. Please try again later.",
    },
    "unknown_state": {
        "ja": "この認証の情報が見つかりません。最初から手続きをやり直してください。",
        "en": "This authorization is not known. Please start again from the beginning.",
    },
    "expired": {
        "ja": "認証の有効期限が切れました。最初から手続きをやり直してください。",
        "en": "The authorization has expired. Please start again from the beginning.",
    },
    "replayed": {
        "ja": "この認証はすでに完了しています。口座の状態をご確認ください。",
        "en": "This authorization was already completed. Check the account's status.",
    },
    # A consent bound to the member who started it.
    "not_started_here": {
        "ja": (
            "この連携の手続きは、このブラウザで始められたものではありません。カードは連携されて"
            "おらず、何も保存していません。ほかの人から送られてきたリンクなら、このページを"
            "閉じてください。ご自分のカードを連携するときは、ご自分の会話（チャット、Slack、"
            "ターミナル）から手続きを始めてください。"
        ),
        "en": (
            "This link procedure was not started in this browser. No card was linked and "
            "nothing was kept. If someone sent you this link, close this page. To link your "
            "own card, start the procedure from your own conversation (the chat, Slack or "
            "the terminal)."
        ),
    },
    "issuer_mismatch": {
        "ja": (
            "カード会社からの応答が、手続きを始めたカード会社のものと確認できませんでした。"
            "安全のため、何も連携していません。ご自分の会話から手続きをやり直してください。"
        ),
        "en": (
            "The answer could not be confirmed as coming from the card issuer this procedure "
            "was started with. For safety nothing was linked. Start again from your own "
            "conversation."
        ),
    },
    "start_unknown": {
        "ja": (
            "このリンクは見つかりません。ご自分の会話（チャット、Slack、ターミナル）から"
            "手続きを始めてください。"
        ),
        "en": (
            "This link is not known. Start the procedure from your own conversation (the "
            "chat, Slack or the terminal)."
        ),
    },
    "start_used": {
        "ja": (
            "このリンクはすでに使われています。リンクは1回だけ使えます。"
            "ご自分の会話から手続きをやり直してください。"
        ),
        "en": (
            "This link was already used; a link works once only. Start again from your own "
            "conversation."
        ),
    },
    "code_wrong": {
        "ja": "確認コードが違います。ご自分の会話に表示されたコードを入力してください。",
        "en": "That confirmation code is not right. Type the code shown in your own conversation.",
    },
    "code_exhausted": {
        "ja": (
            "確認コードを何度も間違えたため、このリンクは使えなくなりました。"
            "ご自分の会話から手続きをやり直してください。"
        ),
        "en": (
            "The confirmation code was wrong too many times, so this link no longer works. "
            "Start again from your own conversation."
        ),
    },
    "start_form": {
        "ja": ("このページの入力を受け付けられませんでした。会話のリンクを開き直してください。"),
        "en": "This page's form could not be accepted. Open the link of your conversation again.",
    },
    "unknown": {
        "ja": "連携できませんでした。最初から手続きをやり直してください。",
        "en": "The card could not be linked. Please start again from the beginning.",
    },
}


def outcome_text(code: str) -> Text:
    """The text of an outcome code, or a general one for codes without their own."""
    return OUTCOMES.get(code, OUTCOMES["unknown"])
