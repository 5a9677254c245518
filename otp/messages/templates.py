# ruff: noqa: RUF001, RUF003  (the catalogue is written in the scripts of its languages)
"""Message templates per channel and locale: the single source of every word sent to users.

Locales resolve from the most specific tag to the least (``zh-Hant-TW`` -> ``zh-Hant`` ->
``zh``), with a few region aliases (``zh-TW`` -> ``zh-Hant``), then to English. Tags are
normalised first (``PT_br`` -> ``pt-BR``, ``zh_hant_tw`` -> ``zh-Hant-TW``).

Placeholders in the catalogue: ``$brand``, ``$code`` and ``$duration`` (the TTL in whole
minutes, rounded up, at least 1, with the unit in the locale's plural form). Every phrase
that names the brand has a brandless twin, so an empty brand never leaves a dangling word.

SMS wording is chosen to stay in GSM-7 where the language allows it (see ``otp.messages.sms``) and
comes in variants from most to least complete: the renderer sends the most complete one
among those with the fewest segments. Every latin-script locale's SMS is GSM-7 (Turkish,
Polish and Vietnamese SMS drop the letters GSM-7 lacks, as is customary there); Arabic,
Chinese, Hindi, Japanese, Korean, Russian, Thai and Ukrainian are UCS-2 by nature.
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Mapping, Set
from dataclasses import dataclass
from string import Template
from types import MappingProxyType

from otp.domain import Channel
from otp.messages.sms import (
    SmsEncoding,
    analyze,
    validate_app_hash,
    validate_web_domain,
    webotp_line,
)

DEFAULT_LOCALE = "en"


@dataclass(frozen=True)
class RenderedMessage:
    subject: str
    text: str
    html: str | None = None
    # SMS only: the encoding and the number of segments the text costs.
    encoding: SmsEncoding | None = None
    segments: int | None = None
    # The catalogue entry used (BCP 47), after fallback.
    locale: str = DEFAULT_LOCALE
    # WhatsApp, from an application's template: the pre-approved template to send (a Meta
    # template name, or a Twilio Content SID `HX...`) and its language; None: the provider's.
    whatsapp_template_name: str | None = None
    whatsapp_language: str | None = None


@dataclass(frozen=True)
class VoiceScript:
    """What a voice call says: ``intro``, each of ``digits`` separately, ``repeat_phrase``, again."""

    language_tag: str
    intro: str
    digits: tuple[str, ...]
    repeat_phrase: str


@dataclass(frozen=True)
class Phrase:
    """A phrase naming the brand, and its twin for when there is no brand."""

    branded: str
    plain: str

    def pick(self, brand: str) -> str:
        return self.branded if brand else self.plain


@dataclass(frozen=True)
class LocaleCatalogue:
    tag: str  # BCP 47
    duration: Callable[[int], str]  # whole minutes -> "10 minutes"
    sentence: Phrase  # the code sentence (WhatsApp, email)
    expiry: str
    warning: str
    subject: Phrase
    email_ignore: str
    voice_intro: Phrase
    voice_repeat: str
    # SMS wording when the general one would leave GSM-7 (defaults to the general one).
    sms_sentence: Phrase | None = None
    sms_expiry: str | None = None
    sms_warning: str | None = None
    sms_duration: Callable[[int], str] | None = None  # SMS spelling of `duration`, if different
    separator: str = " "  # between sentences ("" in Chinese and Japanese)
    rtl: bool = False

    @property
    def dir(self) -> str:
        return "rtl" if self.rtl else "ltr"

    def sms_variants(self, brand: str) -> tuple[str, ...]:
        """SMS bodies from most to least complete (all with ``$code``)."""
        sentence = (self.sms_sentence or self.sentence).pick(brand)
        expiry = self.sms_expiry or self.expiry
        warning = self.sms_warning or self.warning
        sep = self.separator
        return (
            sep.join((sentence, expiry, warning)),
            sep.join((sentence, expiry)),
            sentence,
        )


def _plural(one: str, other: str) -> Callable[[int], str]:
    return lambda n: f"{n} {one if n == 1 else other}"


def _french(n: int) -> str:
    return f"{n} minute" if n < 2 else f"{n} minutes"


def _arabic(n: int) -> str:
    """CLDR plural categories for Arabic, in the genitive after a preposition."""
    if n == 1:
        return "دقيقة واحدة"
    if n == 2:
        return "دقيقتين"
    if 3 <= n % 100 <= 10:
        return f"{n} دقائق"
    return f"{n} دقيقة"


_CATALOGUE: dict[str, LocaleCatalogue] = {}


def _add(entry: LocaleCatalogue) -> None:
    _CATALOGUE[entry.tag] = entry


_add(
    LocaleCatalogue(
        tag="en",
        duration=_plural("minute", "minutes"),
        sentence=Phrase(
            "Your $brand verification code is $code.", "Your verification code is $code."
        ),
        expiry="It expires in $duration.",
        warning="Do not share it with anyone.",
        subject=Phrase("Your $brand verification code", "Your verification code"),
        email_ignore="If you didn't request this code, you can ignore this email.",
        voice_intro=Phrase("Your $brand verification code is", "Your verification code is"),
        voice_repeat="Once again, your code is",
    )
)
_add(
    LocaleCatalogue(
        tag="es",
        duration=_plural("minuto", "minutos"),
        sentence=Phrase(
            "Tu código de verificación de $brand es $code.", "Tu código de verificación es $code."
        ),
        expiry="Caduca en $duration.",
        warning="No lo compartas con nadie.",
        subject=Phrase("Tu código de verificación de $brand", "Tu código de verificación"),
        email_ignore="Si no solicitaste este código, puedes ignorar este correo.",
        voice_intro=Phrase(
            "Tu código de verificación de $brand es", "Tu código de verificación es"
        ),
        voice_repeat="Repito, tu código es",
        # "código" and "verificación" are not GSM-7; "clave de seguridad" is, and is idiomatic.
        sms_sentence=Phrase(
            "Tu clave de seguridad de $brand es $code.", "Tu clave de seguridad es $code."
        ),
        sms_warning="No la compartas con nadie.",
    )
)
_add(
    LocaleCatalogue(
        tag="fr",
        duration=_french,
        sentence=Phrase(
            "Votre code de vérification $brand est $code.", "Votre code de vérification est $code."
        ),
        expiry="Il expire dans $duration.",
        warning="Ne le partagez avec personne.",
        subject=Phrase("Votre code de vérification $brand", "Votre code de vérification"),
        email_ignore="Si vous n'avez pas demandé ce code, vous pouvez ignorer cet e-mail.",
        voice_intro=Phrase(
            "Votre code de vérification $brand est", "Votre code de vérification est"
        ),
        voice_repeat="Je répète, votre code est",
    )
)
_add(
    LocaleCatalogue(
        tag="de",
        duration=_plural("Minute", "Minuten"),
        sentence=Phrase(
            "Ihr Bestätigungscode für $brand lautet $code.", "Ihr Bestätigungscode lautet $code."
        ),
        expiry="Er ist $duration gültig.",
        warning="Geben Sie ihn nicht weiter.",
        subject=Phrase("Ihr Bestätigungscode für $brand", "Ihr Bestätigungscode"),
        email_ignore=(
            "Wenn Sie diesen Code nicht angefordert haben, können Sie diese E-Mail ignorieren."
        ),
        voice_intro=Phrase("Ihr Bestätigungscode für $brand lautet", "Ihr Bestätigungscode lautet"),
        voice_repeat="Noch einmal, Ihr Code lautet",
    )
)
_add(
    LocaleCatalogue(
        tag="pt",  # Brazilian Portuguese
        duration=_plural("minuto", "minutos"),
        sentence=Phrase(
            "Seu código de verificação $brand é $code.", "Seu código de verificação é $code."
        ),
        expiry="Ele expira em $duration.",
        warning="Não o compartilhe com ninguém.",
        subject=Phrase("Seu código de verificação $brand", "Seu código de verificação"),
        email_ignore="Se você não solicitou este código, ignore este e-mail.",
        voice_intro=Phrase("Seu código de verificação $brand é", "Seu código de verificação é"),
        voice_repeat="Repetindo, seu código é",
        # "código", "verificação" and "não" are not GSM-7; this wording is.
        sms_sentence=Phrase("$brand: digite $code para confirmar.", "Digite $code para confirmar."),
        sms_expiry="Expira em $duration.",
        sms_warning="Nunca compartilhe com ninguém.",
    )
)
_add(
    LocaleCatalogue(
        tag="it",
        duration=_plural("minuto", "minuti"),
        sentence=Phrase(
            "Il tuo codice di verifica per $brand è $code.", "Il tuo codice di verifica è $code."
        ),
        expiry="Scade tra $duration.",
        warning="Non condividerlo con nessuno.",
        subject=Phrase("Il tuo codice di verifica per $brand", "Il tuo codice di verifica"),
        email_ignore="Se non hai richiesto questo codice, puoi ignorare questa email.",
        voice_intro=Phrase("Il tuo codice di verifica per $brand è", "Il tuo codice di verifica è"),
        voice_repeat="Ripeto, il tuo codice è",
    )
)
_add(
    LocaleCatalogue(
        tag="ja",
        duration=lambda n: f"{n}分",
        sentence=Phrase("$brandの認証コードは$codeです。", "認証コードは$codeです。"),
        expiry="有効期限は$durationです。",
        warning="このコードは誰にも教えないでください。",
        subject=Phrase("$brandの認証コード", "認証コードのお知らせ"),
        email_ignore="お心当たりのない場合は、このメールを破棄してください。",
        voice_intro=Phrase("$brandの認証コードは", "認証コードは"),
        voice_repeat="もう一度繰り返します。認証コードは",
        sms_sentence=Phrase("【$brand】認証コードは$codeです。", "認証コードは$codeです。"),
        separator="",
    )
)
_add(
    LocaleCatalogue(
        tag="zh",  # Simplified Chinese
        duration=lambda n: f"{n}分钟",
        sentence=Phrase("您的$brand验证码为$code。", "您的验证码为$code。"),
        expiry="$duration内有效。",
        warning="请勿泄露给他人。",
        subject=Phrase("您的$brand验证码", "您的验证码"),
        email_ignore="如果这不是您本人的操作，请忽略此邮件。",
        voice_intro=Phrase("您的$brand验证码是", "您的验证码是"),
        voice_repeat="再说一遍，您的验证码是",
        sms_sentence=Phrase("【$brand】您的验证码为$code。", "您的验证码为$code。"),
        separator="",
    )
)
_add(
    LocaleCatalogue(
        tag="zh-Hant",  # Traditional Chinese (Taiwan, Hong Kong, Macau)
        duration=lambda n: f"{n}分鐘",
        sentence=Phrase("您的$brand驗證碼為$code。", "您的驗證碼為$code。"),
        expiry="$duration內有效。",
        warning="請勿告知他人。",
        subject=Phrase("您的$brand驗證碼", "您的驗證碼"),
        email_ignore="如果這不是您本人的操作，請忽略此郵件。",
        voice_intro=Phrase("您的$brand驗證碼是", "您的驗證碼是"),
        voice_repeat="再說一遍，您的驗證碼是",
        sms_sentence=Phrase("【$brand】您的驗證碼為$code。", "您的驗證碼為$code。"),
        separator="",
    )
)
_add(
    LocaleCatalogue(
        tag="ar",
        duration=_arabic,
        sentence=Phrase("رمز التحقق من $brand هو $code.", "رمز التحقق الخاص بك هو $code."),
        expiry="صالح لمدة $duration.",
        warning="لا تشاركه مع أحد.",
        subject=Phrase("رمز التحقق من $brand", "رمز التحقق الخاص بك"),
        email_ignore="إذا لم تطلب هذا الرمز، فيمكنك تجاهل هذه الرسالة.",
        voice_intro=Phrase("رمز التحقق من $brand هو", "رمز التحقق الخاص بك هو"),
        voice_repeat="أكرر، رمز التحقق هو",
        rtl=True,
    )
)
_add(
    LocaleCatalogue(
        tag="hi",
        duration=lambda n: f"{n} मिनट",
        sentence=Phrase("आपका $brand सत्यापन कोड $code है।", "आपका सत्यापन कोड $code है।"),
        expiry="यह $duration तक मान्य है।",
        warning="इसे किसी के साथ साझा न करें।",
        subject=Phrase("आपका $brand सत्यापन कोड", "आपका सत्यापन कोड"),
        email_ignore="अगर आपने यह कोड नहीं मांगा है, तो इस ईमेल को अनदेखा करें।",
        voice_intro=Phrase("आपका $brand सत्यापन कोड है", "आपका सत्यापन कोड है"),
        voice_repeat="एक बार फिर, आपका कोड है",
        # Shorter, so that brand, code and expiry fit one UCS-2 SMS.
        sms_expiry="$duration तक मान्य।",
        sms_warning="इसे किसी को न बताएं।",
    )
)


def _slavic(one: str, few: str, many: str) -> Callable[[int], str]:
    """CLDR plural categories of Russian, Ukrainian and Polish (one, few, many)."""

    def duration(n: int) -> str:
        if n % 10 == 1 and n % 100 != 11:
            return f"{n} {one}"
        if 2 <= n % 10 <= 4 and not 12 <= n % 100 <= 14:
            return f"{n} {few}"
        return f"{n} {many}"

    return duration


def _polish(n: int) -> str:
    """Polish: 1 minuta, 2-4 minuty (not 12-14), otherwise minut."""
    if n == 1:
        return "1 minuta"
    return _slavic("minut", "minuty", "minut")(n)


_add(
    LocaleCatalogue(
        tag="nl",
        duration=_plural("minuut", "minuten"),
        sentence=Phrase("Je verificatiecode voor $brand is $code.", "Je verificatiecode is $code."),
        expiry="Hij verloopt over $duration.",
        warning="Deel hem met niemand.",
        subject=Phrase("Je verificatiecode voor $brand", "Je verificatiecode"),
        email_ignore="Heb je deze code niet aangevraagd? Dan kun je deze e-mail negeren.",
        voice_intro=Phrase("Je verificatiecode voor $brand is", "Je verificatiecode is"),
        voice_repeat="Nogmaals, je code is",
    )
)
_add(
    LocaleCatalogue(
        tag="sv",
        duration=_plural("minut", "minuter"),
        sentence=Phrase(
            "Din verifieringskod för $brand är $code.", "Din verifieringskod är $code."
        ),
        expiry="Den går ut om $duration.",
        warning="Dela den inte med någon.",
        subject=Phrase("Din verifieringskod för $brand", "Din verifieringskod"),
        email_ignore="Om du inte har begärt den här koden kan du ignorera det här mejlet.",
        voice_intro=Phrase("Din verifieringskod för $brand är", "Din verifieringskod är"),
        voice_repeat="En gång till, din kod är",
    )
)
_add(
    LocaleCatalogue(
        tag="id",
        duration=lambda n: f"{n} menit",
        sentence=Phrase(
            "Kode verifikasi $brand Anda adalah $code.", "Kode verifikasi Anda adalah $code."
        ),
        expiry="Berlaku selama $duration.",
        warning="Jangan berikan kode ini kepada siapa pun.",
        subject=Phrase("Kode verifikasi $brand Anda", "Kode verifikasi Anda"),
        email_ignore="Jika Anda tidak meminta kode ini, abaikan email ini.",
        voice_intro=Phrase("Kode verifikasi $brand Anda adalah", "Kode verifikasi Anda adalah"),
        voice_repeat="Sekali lagi, kode Anda adalah",
    )
)
_add(
    LocaleCatalogue(
        tag="tr",
        duration=lambda n: f"{n} dakika",
        sentence=Phrase("$brand doğrulama kodunuz: $code.", "Doğrulama kodunuz: $code."),
        expiry="Kod $duration geçerlidir.",
        warning="Kodu kimseyle paylaşmayın.",
        subject=Phrase("$brand doğrulama kodunuz", "Doğrulama kodunuz"),
        email_ignore="Bu kodu siz istemediyseniz bu e-postayı yok sayabilirsiniz.",
        voice_intro=Phrase("$brand doğrulama kodunuz", "Doğrulama kodunuz"),
        voice_repeat="Tekrar ediyorum, kodunuz",
        # "ğ", "ş", "ı" and "ç" are not GSM-7: Turkish SMS is commonly written without them.
        sms_sentence=Phrase("$brand dogrulama kodunuz: $code.", "Dogrulama kodunuz: $code."),
        sms_expiry="Kod $duration gecerlidir.",
        sms_warning="Kodu kimseyle paylasmayin.",
    )
)
_add(
    LocaleCatalogue(
        tag="pl",
        duration=_polish,
        sentence=Phrase(
            "Twój kod weryfikacyjny $brand to $code.", "Twój kod weryfikacyjny to $code."
        ),
        expiry="Wygasa za $duration.",
        warning="Nie udostępniaj go nikomu.",
        subject=Phrase("Twój kod weryfikacyjny $brand", "Twój kod weryfikacyjny"),
        email_ignore="Jeśli nie prosiłeś o ten kod, zignoruj tę wiadomość.",
        voice_intro=Phrase("Twój kod weryfikacyjny $brand to", "Twój kod weryfikacyjny to"),
        voice_repeat="Powtarzam, twój kod to",
        # "ó", "ę", "ą", "ś" are not GSM-7; this wording avoids them.
        sms_sentence=Phrase("Kod weryfikacyjny $brand: $code.", "Kod weryfikacyjny: $code."),
        sms_warning="Nie udostepniaj go nikomu.",
    )
)
_add(
    LocaleCatalogue(
        tag="vi",
        duration=lambda n: f"{n} phút",
        sentence=Phrase("Mã xác minh $brand của bạn là $code.", "Mã xác minh của bạn là $code."),
        expiry="Mã có hiệu lực trong $duration.",
        warning="Không chia sẻ mã này với bất kỳ ai.",
        subject=Phrase("Mã xác minh $brand của bạn", "Mã xác minh của bạn"),
        email_ignore="Nếu bạn không yêu cầu mã này, hãy bỏ qua email này.",
        voice_intro=Phrase("Mã xác minh $brand của bạn là", "Mã xác minh của bạn là"),
        voice_repeat="Xin nhắc lại, mã của bạn là",
        # Vietnamese SMS is customarily sent without diacritics (GSM-7, 160 characters).
        sms_sentence=Phrase(
            "Ma xac minh $brand cua ban la $code.", "Ma xac minh cua ban la $code."
        ),
        sms_expiry="Ma co hieu luc trong $duration.",
        sms_warning="Khong chia se ma nay voi bat ky ai.",
        sms_duration=lambda n: f"{n} phut",
    )
)
_add(
    LocaleCatalogue(
        tag="ru",
        duration=_slavic("минуту", "минуты", "минут"),
        sentence=Phrase("Ваш код подтверждения $brand: $code.", "Ваш код подтверждения: $code."),
        expiry="Он действует $duration.",
        warning="Никому его не сообщайте.",
        subject=Phrase("Ваш код подтверждения $brand", "Ваш код подтверждения"),
        email_ignore="Если вы не запрашивали этот код, просто проигнорируйте это письмо.",
        voice_intro=Phrase("Ваш код подтверждения $brand", "Ваш код подтверждения"),
        voice_repeat="Повторяю, ваш код",
        # Cyrillic is UCS-2 (70 characters): shorter, so brand, code and expiry fit one SMS.
        sms_sentence=Phrase("Код $brand: $code.", "Ваш код: $code."),
        sms_warning="Никому не сообщайте.",
    )
)
_add(
    LocaleCatalogue(
        tag="uk",
        duration=_slavic("хвилини", "хвилин", "хвилин"),
        sentence=Phrase("Ваш код підтвердження $brand: $code.", "Ваш код підтвердження: $code."),
        expiry="Він дійсний протягом $duration.",
        warning="Нікому його не повідомляйте.",
        subject=Phrase("Ваш код підтвердження $brand", "Ваш код підтвердження"),
        email_ignore="Якщо ви не запитували цей код, просто проігноруйте цей лист.",
        voice_intro=Phrase("Ваш код підтвердження $brand", "Ваш код підтвердження"),
        voice_repeat="Повторюю, ваш код",
        sms_sentence=Phrase("Код $brand: $code.", "Ваш код: $code."),
        sms_warning="Нікому не повідомляйте.",
    )
)
_add(
    LocaleCatalogue(
        tag="ko",
        duration=lambda n: f"{n}분",
        sentence=Phrase("$brand 인증번호는 $code입니다.", "인증번호는 $code입니다."),
        expiry="$duration 동안 유효합니다.",
        warning="타인에게 절대 알려주지 마세요.",
        subject=Phrase("$brand 인증번호", "인증번호 안내"),
        email_ignore="본인이 요청하지 않았다면 이 이메일을 무시하세요.",
        voice_intro=Phrase("$brand 인증번호는", "인증번호는"),
        voice_repeat="다시 한 번, 인증번호는",
        sms_sentence=Phrase("[$brand] 인증번호는 $code입니다.", "인증번호는 $code입니다."),
    )
)
_add(
    LocaleCatalogue(
        tag="th",
        duration=lambda n: f"{n} นาที",
        sentence=Phrase("รหัสยืนยัน $brand ของคุณคือ $code", "รหัสยืนยันของคุณคือ $code"),
        expiry="รหัสมีอายุ $duration",
        warning="ห้ามบอกรหัสนี้กับผู้อื่น",
        subject=Phrase("รหัสยืนยัน $brand ของคุณ", "รหัสยืนยันของคุณ"),
        email_ignore="หากคุณไม่ได้ขอรหัสนี้ โปรดละเว้นอีเมลนี้",
        voice_intro=Phrase("รหัสยืนยัน $brand ของคุณคือ", "รหัสยืนยันของคุณคือ"),
        voice_repeat="ขอย้ำอีกครั้ง รหัสของคุณคือ",
        # Thai is UCS-2: shorter, so brand, code and expiry fit one SMS.
        sms_sentence=Phrase("รหัส $brand ของคุณคือ $code", "รหัสของคุณคือ $code"),
        sms_expiry="ใช้ได้ $duration",
        sms_warning="ห้ามบอกผู้อื่น",
    )
)

CATALOGUE: Mapping[str, LocaleCatalogue] = MappingProxyType(_CATALOGUE)
LOCALES: tuple[str, ...] = tuple(_CATALOGUE)

# Tags that are not a prefix of their catalogue entry.
_ALIASES: Mapping[str, str] = MappingProxyType(
    {
        "zh-TW": "zh-Hant",
        "zh-HK": "zh-Hant",
        "zh-MO": "zh-Hant",
        "zh-Hans": "zh",
    }
)


def normalize_locale(locale: str) -> str:
    """Canonical casing of a BCP 47 / POSIX tag: ``pt_br`` -> ``pt-BR``, ``ZH-hant`` -> ``zh-Hant``."""
    tag = locale.strip().split(".", 1)[0].split("@", 1)[0].replace("_", "-")
    parts = [part for part in tag.split("-") if part]
    if not parts:
        return ""
    out = [parts[0].lower()]
    for part in parts[1:]:
        if len(part) == 4 and part.isalpha():
            out.append(part.title())  # script
        elif (len(part) == 2 and part.isalpha()) or (len(part) == 3 and part.isdigit()):
            out.append(part.upper())  # region
        else:
            out.append(part.lower())
    return "-".join(out)


def find_locale(locale: str, available: Mapping[str, object] | Set[str]) -> str | None:
    """The key of ``available`` for ``locale``: exact tag, shorter prefixes (and aliases); None."""
    tag = normalize_locale(locale)
    parts = tag.split("-") if tag else []
    for end in range(len(parts), 0, -1):
        candidate = "-".join(parts[:end])
        if candidate in available:
            return candidate
        alias = _ALIASES.get(candidate)
        if alias is not None and alias in available:
            return alias
    return None


def resolve_locale(locale: str, available: Mapping[str, object] | None = None) -> str:
    """The catalogue key for ``locale``: exact tag, shorter prefixes (and aliases), then English."""
    found = find_locale(locale, CATALOGUE if available is None else available)
    return DEFAULT_LOCALE if found is None else found


def ttl_minutes(ttl_s: float) -> int:
    """Whole minutes left, rounded up, never less than 1."""
    return max(1, math.ceil(ttl_s / 60))


def _fill(template: str, values: Mapping[str, str]) -> str:
    return Template(template).substitute(values)


def render(
    channel: Channel,
    *,
    code: str,
    brand: str,
    ttl_s: int,
    locale: str,
    web_domain: str | None = None,
    app_hash: str | None = None,
) -> RenderedMessage:
    """Render the message carrying ``code`` for ``channel`` in the best matching locale.

    SMS only: with ``web_domain`` the last line is ``@<domain> #<code>`` (origin-bound
    one-time code, for WebOTP and one-time-code autofill); with ``app_hash`` the Android
    SMS Retriever hash is on its own line before it. Both are validated on every channel
    (``ValueError``), so a misconfiguration shows up at once, not only on SMS.
    """
    domain = validate_web_domain(web_domain) if web_domain is not None else None
    retriever_hash = validate_app_hash(app_hash) if app_hash is not None else None
    entry = CATALOGUE[resolve_locale(locale)]
    values = {"brand": brand, "code": code, "duration": entry.duration(ttl_minutes(ttl_s))}
    subject = _fill(entry.subject.pick(brand), values)

    if channel is Channel.SMS:
        if entry.sms_duration is not None:
            values = {**values, "duration": entry.sms_duration(ttl_minutes(ttl_s))}
        tail = [line for line in (retriever_hash,) if line]
        if domain is not None:
            tail.append(webotp_line(domain, code))
        suffix = "\n\n" + "\n".join(tail) if tail else ""
        candidates = [_fill(body, values) + suffix for body in entry.sms_variants(brand)]
        analysed = [analyze(text) for text in candidates]
        fewest = min(info.segments for info in analysed)
        index = next(i for i, info in enumerate(analysed) if info.segments == fewest)
        return RenderedMessage(
            subject=subject,
            text=candidates[index],
            encoding=analysed[index].encoding,
            segments=fewest,
            locale=entry.tag,
        )

    sentence = _fill(entry.sentence.pick(brand), values)
    expiry = _fill(entry.expiry, values)
    sep = entry.separator
    if channel is Channel.EMAIL:
        text = f"{sentence}\n\n{expiry}{sep}{entry.warning}\n\n{entry.email_ignore}\n"
        return RenderedMessage(
            subject=subject, text=text, html=_email_html(entry, values), locale=entry.tag
        )
    if channel is Channel.VOICE:
        script = voice_script(code, brand=brand, locale=locale)
        text = f"{script.intro} {' '.join(script.digits)}"
        return RenderedMessage(subject=subject, text=text, locale=entry.tag)
    text = sep.join((sentence, expiry, entry.warning))  # WhatsApp
    return RenderedMessage(subject=subject, text=text, locale=entry.tag)


_HTML = Template(
    """<!doctype html>
<html lang="$lang" dir="$dir">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>$subject</title>
</head>
<body style="margin: 0; padding: 24px; font-family: sans-serif; line-height: 1.5; color: #111">
<p>$sentence</p>
<p dir="ltr" style="font-size: 28px; font-weight: bold; letter-spacing: 4px; \
font-family: monospace">$code</p>
<p>$expiry$sep$warning</p>
<p style="font-size: 13px; color: #555">$ignore</p>
</body>
</html>
"""
)


def _email_html(entry: LocaleCatalogue, values: Mapping[str, str]) -> str:
    """The HTML part: every catalogue string and every value escaped; the brand bidi-isolated."""
    escaped = {key: html.escape(value) for key, value in values.items()}
    in_text = {**escaped, "brand": f"<bdi>{escaped['brand']}</bdi>"}

    def fill(template: str, substitutions: Mapping[str, str]) -> str:
        return Template(html.escape(template, quote=False)).substitute(substitutions)

    return _HTML.substitute(
        lang=entry.tag,
        dir=entry.dir,
        subject=fill(entry.subject.pick(values["brand"]), escaped),
        sentence=fill(entry.sentence.pick(values["brand"]), in_text),
        code=escaped["code"],
        expiry=fill(entry.expiry, escaped),
        sep=entry.separator,
        warning=html.escape(entry.warning),
        ignore=html.escape(entry.email_ignore),
    )


def voice_script(code: str, *, brand: str = "", locale: str) -> VoiceScript:
    """What a call says, in the best matching locale: the intro, the code's characters, the repeat."""
    entry = CATALOGUE[resolve_locale(locale)]
    return VoiceScript(
        language_tag=entry.tag,
        intro=_fill(entry.voice_intro.pick(brand), {"brand": brand}),
        digits=tuple(code),
        repeat_phrase=entry.voice_repeat,
    )
