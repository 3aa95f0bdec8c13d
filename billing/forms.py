from django import forms

from billing.csv_import import ImportFormat

MAX_UPLOAD_MB = 10


class ImportTimeForm(forms.Form):
    file = forms.FileField(label="CSV file", help_text=f"Up to {MAX_UPLOAD_MB} MB.")
    format = forms.ChoiceField(label="Exported by", choices=ImportFormat.choices)
    dry_run = forms.BooleanField(label="Dry run: check the file and report, save nothing", required=False)

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload.size > MAX_UPLOAD_MB * 1024 * 1024:
            raise forms.ValidationError(
                f"The file is {upload.size / (1024 * 1024):.1f} MB; the limit is {MAX_UPLOAD_MB} MB. "
                "Export a shorter period, or use the import_time management command."
            )
        return upload
